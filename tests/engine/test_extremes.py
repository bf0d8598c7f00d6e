"""The engine fed extreme (and out-of-range) sampling values directly: every one draws a real
token or fails alone; none raises out of a step, none spoils its neighbours in the batch.

Found by fuzzing the server: ``seed = 2**64`` raised in ``engine.add`` and ended the worker
process; ``top_p = 7e-81`` and ``temperature = 1e-300`` made a row of NaN probabilities, and
the failed step took every job in the batch with it.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from jupyter_llm.engine.base import EngineRequest
from jupyter_llm.engine.local.sampling import RowSampler, sample
from jupyter_llm.errors import InvalidRequest
from jupyter_llm.types import GenerationRequest, SamplingParams
from jupyter_llm.validate import SAMPLING

from .test_runner import engine_for, run

CPU = torch.device("cpu")
SEED_MIN, SEED_MAX = int(SAMPLING["seed"].low or 0), int(SAMPLING["seed"].high or 0)
TINY = 5e-324  # the smallest positive float

# Each inside the range that SamplingParams accepts.
EXTREMES: list[dict[str, object]] = [
    {"temperature": TINY},
    {"temperature": 1e-300},
    {"temperature": 2.0},
    {"top_p": TINY},
    {"top_p": 7.287224258961162e-81},
    {"top_k": 1},
    {"top_k": 10**12},
    {"min_p": 1.0},
    {"min_p": TINY},
    {"repetition_penalty": TINY},
    {"repetition_penalty": 1e308},
    {"presence_penalty": 2.0, "frequency_penalty": 2.0},
    {"presence_penalty": -2.0, "frequency_penalty": -2.0},
    {"seed": SEED_MAX},
    {"seed": SEED_MIN},
    {"temperature": TINY, "top_p": TINY, "min_p": 1.0, "top_k": 1, "repetition_penalty": TINY},
    {"logprobs": True, "top_logprobs": 20, "temperature": TINY},
]


def unchecked(params: SamplingParams, **values: object) -> SamplingParams:
    """``params`` with ``values`` set past validation (what a bug upstream could hand in)."""
    params = replace(params)
    for name, value in values.items():
        object.__setattr__(params, name, value)
    return params


@pytest.mark.parametrize("values", EXTREMES, ids=lambda v: ",".join(f"{k}={v[k]}" for k in v))
def test_sampling_extremes_draw_a_real_token(values: dict[str, object]) -> None:
    params = SamplingParams(**{"temperature": 1.0, **values})  # type: ignore[arg-type]
    logits = torch.randn(3, 64, generator=torch.Generator().manual_seed(0)) * 30
    logits[1, 5] = 1e30  # a huge logit in the batch too
    samplers = [RowSampler(params, [1, 2, 3, 5], CPU) for _ in range(3)]
    for _ in range(3):
        draws = sample(samplers, logits, lambda ids: f"<{ids[0]}>")
        for sampler, drawn in zip(samplers, draws, strict=True):
            assert 0 <= drawn.token_id < 64
            sampler.observe(drawn.token_id)
            if drawn.logprob is not None:
                assert math.isfinite(drawn.logprob.logprob)


def test_a_tiny_top_p_keeps_the_most_likely_token() -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0]])
    for seed in range(5):
        params = SamplingParams(temperature=1.0, top_p=TINY, seed=seed)
        assert sample([RowSampler(params, [], CPU)], logits, str)[0].token_id == 1


def test_a_tiny_temperature_is_greedy() -> None:
    logits = torch.tensor([[0.0, 3.0, 2.999, 2.0]])
    for seed in range(5):
        params = SamplingParams(temperature=TINY, seed=seed)
        assert sample([RowSampler(params, [], CPU)], logits, str)[0].token_id == 1


@pytest.mark.parametrize("seed", [2**64, -(2**63) - 1, 10**30])
def test_seeds_beyond_64_bits_are_refused_before_the_engine(seed: int) -> None:
    with pytest.raises(InvalidRequest, match=r"^seed: expected an integer from") as refused:
        SamplingParams(seed=seed)
    assert refused.value.param == "seed"


def test_the_real_engine_survives_every_extreme_in_one_batch(tiny_model_dir) -> None:
    engine = engine_for(tiny_model_dir, max_num_seqs=32)
    requests = {
        f"x{i}": GenerationRequest(
            "m",
            prompt="The quick brown fox",
            # ignore_eos: unseeded rows may draw the end token, and the check is their length
            params=SamplingParams(  # type: ignore[arg-type]
                **{"max_tokens": 6, "temperature": 1.0, "ignore_eos": True, **values}
            ),
        )
        for i, values in enumerate(EXTREMES)
    }
    requests["plain"] = GenerationRequest(
        "m", prompt="The quick brown fox", params=SamplingParams(max_tokens=6, temperature=0)
    )
    tokens, _, finish = run(engine, requests, join_every=1)
    assert finish == {job: "length" for job in requests}
    assert all(len(ids) == 6 for ids in tokens.values())


def test_a_value_the_engine_cannot_take_fails_at_add_not_later(tiny_model_dir) -> None:
    """The worker turns an exception from ``add`` into that job's failure (tests/pool)."""
    engine = engine_for(tiny_model_dir)
    params = unchecked(SamplingParams(max_tokens=4, temperature=1.0), seed=2**64)
    with pytest.raises(ValueError, match="Overflow"):
        engine.add(EngineRequest("bad", GenerationRequest("m", prompt="x", params=params), 0))
    assert not engine.has_work()
