"""docs/configuration.md is what the rule tables say: every key, and nothing stale."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jupyter_llm.config import docs, rules

PAGE = Path(__file__).parents[1] / "docs" / "configuration.md"
REGENERATE = "python -m jupyter_llm.config.docs > docs/configuration.md"


def rule_tables() -> dict[str, Mapping[str, rules.Rule]]:
    """Every table of rules in rules.py, by its name there."""
    return {
        name: table
        for name, table in vars(rules).items()
        if isinstance(table, Mapping)
        and table
        and all(isinstance(rule, rules.Rule) for rule in table.values())
    }


def test_the_page_is_what_the_rules_write() -> None:
    assert PAGE.read_text() == docs.page(), f"docs/configuration.md is stale: run {REGENERATE}"


def test_every_rule_table_has_a_section() -> None:
    documented = [id(table) for _, _, table, _ in docs.SECTIONS]
    missing = [name for name, table in rule_tables().items() if id(table) not in documented]
    assert not missing, f"rule tables without a section in jupyter_llm/config/docs.py: {missing}"


def test_every_key_has_a_row_that_says_what_it_is_for() -> None:
    text = PAGE.read_text()
    for heading, path, table, _ in docs.SECTIONS:
        for key, rule in table.items():
            assert rule.doc.strip(), f"{heading}.{key}: its Rule needs .described(...)"
            assert f"| `{path}.{key}` |" in text, f"{path}.{key} is not on the page: {REGENERATE}"


def test_the_model_sections_are_on_the_page() -> None:
    text = PAGE.read_text()
    for section in rules.MODEL_SECTIONS:
        assert f"## `models[].{section}`" in text
