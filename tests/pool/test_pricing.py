"""Pricing: a job's units from its counted prompt, the model's limits and defaults."""

from __future__ import annotations

import pytest

from jupyter_llm.config import ModelParams
from jupyter_llm.errors import InvalidRequest, JobTooLarge
from jupyter_llm.pool.pricing import job_cost, job_limit, price, with_defaults
from jupyter_llm.types import GenerationRequest, SamplingParams


@pytest.mark.parametrize(
    ("prompt", "max_tokens", "block", "cost"),
    [(1, 15, 16, 1), (1, 16, 16, 2), (100, 28, 16, 8), (0, 1, 16, 1), (10, 10, 1, 20)],
)
def test_cost_is_blocks_for_prompt_plus_max_tokens(prompt, max_tokens, block, cost):
    assert job_cost(prompt, max_tokens, block) == cost


def test_the_limit_is_a_workers_share_of_max_units_or_its_cache():
    assert job_limit(100, None, 2) == 100
    assert job_limit(100, 60, 2) == 30
    assert job_limit(10, 60, 2) == 10
    assert job_limit(100, 1, 4) == 1  # never 0: some job must fit


def test_price_checks_the_context_then_the_limit():
    limits = {"model": "m", "context": 64, "block_size": 16, "limit": 3}
    assert price(10, 20, **limits) == 2
    with pytest.raises(InvalidRequest, match=r"the prompt \(50 tokens\) plus max_tokens \(20\)"):
        price(50, 20, **limits)
    with pytest.raises(InvalidRequest, match=r"the prompt \(at least 65 tokens\) exceeds") as long:
        price(65, 20, **limits, prompt_param="messages")
    assert long.value.param == "messages"
    with pytest.raises(JobTooLarge) as caught:
        price(40, 20, **limits)
    assert (caught.value.cost, caught.value.capacity, caught.value.param) == (4, 3, "max_tokens")


def test_defaults_fill_only_what_the_request_leaves_out():
    defaults = ModelParams(temperature=0.3, max_tokens=9)
    bare = GenerationRequest("m", prompt="x")
    filled = with_defaults(bare, defaults).params
    assert (filled.max_tokens, filled.temperature) == (9, 0.3)
    own = GenerationRequest("m", prompt="x", params=SamplingParams(max_tokens=2, temperature=0))
    assert with_defaults(own, defaults) is own


def test_an_empty_prompt_is_refused_before_the_engine_sees_it():
    """0 prompt tokens (an empty completion prompt, for a tokenizer without BOS) once failed
    in the engine's first step; it is the client's fault, and said so."""
    with pytest.raises(InvalidRequest, match=r"the prompt is empty \(0 tokens") as refused:
        price(0, 8, model="m", context=64, block_size=16, limit=100)
    assert refused.value.param == "prompt"
