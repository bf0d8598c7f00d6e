from __future__ import annotations

import pytest

from jupyter_llm.kernel.interpolate import MissingName, interpolate

NAMESPACE = {
    "topic": "batching",
    "n": 3,
    "In": ["", "x = 1", "6 * 7", "%%llm ..."],
    "Out": {2: 42},
}


def test_names_and_history_are_filled() -> None:
    assert interpolate("{topic}: {n} {In[1]} = {Out[2]}", NAMESPACE) == "batching: 3 x = 1 = 42"


def test_in_takes_negative_indexes_like_a_list() -> None:
    assert interpolate("before: {In[-2]}", NAMESPACE) == "before: 6 * 7"


def test_unknown_names_and_missing_history_stay_as_written() -> None:
    text = "{missing} {Out[7]} {In[99]} {Out[-1]} {} {1} {a b} {topic!r} {{topic}}"
    assert interpolate(text, NAMESPACE) == (
        "{missing} {Out[7]} {In[99]} {Out[-1]} {} {1} {a b} {topic!r} {batching}"
    )


def test_strict_names_the_missing_placeholder() -> None:
    for text, placeholder in (
        ("about {missing} things", "{missing}"),
        ("{topic} then {In[99]}", "{In[99]}"),
        ("{Out[7]}", "{Out[7]}"),
    ):
        with pytest.raises(MissingName) as missing:
            interpolate(text, NAMESPACE, strict=True)
        assert missing.value.placeholder == placeholder
    text = 'def f(): return {"a": 1} or {} or {a b}'
    assert interpolate(text, NAMESPACE, strict=True) == text


def test_code_and_json_survive() -> None:
    prompt = 'Fix: def f(x): return {"a": x}\nfor k in {}: pass'
    assert interpolate(prompt, NAMESPACE) == prompt


def test_non_ascii_identifiers() -> None:
    assert interpolate("{thé}", {"thé": "chaud"}) == "chaud"
