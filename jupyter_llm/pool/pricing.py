"""What a job costs, as pure functions of its counted prompt and its model's limits.

A unit is one KV-cache block of ``block_size`` tokens; a job costs
``ceil((prompt_tokens + max_tokens) / block_size)`` units for its whole life, because its
cache grows to that size. The lot counts the prompt (in a helper thread) and asks here
what that means; ``admission.UnitLedger`` then decides when the job may start.
"""

from __future__ import annotations

import math

from ..completion import COMPLETION_MAX_TOKENS, COMPLETION_TEMPERATURE
from ..config import ModelParams
from ..errors import InvalidRequest, JobTooLarge
from ..types import GenerationRequest

__all__ = ["job_cost", "job_limit", "price", "with_defaults"]


def job_cost(prompt_tokens: int, max_tokens: int, block_size: int) -> int:
    return math.ceil((prompt_tokens + max_tokens) / block_size)


def job_limit(cache_units: int, max_units: int | None, workers: int) -> int:
    """The most units one job may cost: one worker's share of ``max_units``, or its cache."""
    if max_units is None:
        return cache_units
    return min(cache_units, max(1, max_units // workers))


def with_defaults(request: GenerationRequest, defaults: ModelParams) -> GenerationRequest:
    """The model's defaults for what the request leaves out (max_tokens, temperature);
    a completion's own, short and nearly greedy, whatever the model's."""
    params = request.params
    if params.max_tokens is not None and params.temperature is not None:
        return request
    max_tokens, temperature = defaults.max_tokens, defaults.temperature
    if request.completion is not None:
        max_tokens, temperature = COMPLETION_MAX_TOKENS, COMPLETION_TEMPERATURE
    return request.with_params(
        max_tokens=params.max_tokens or max_tokens,
        temperature=temperature if params.temperature is None else params.temperature,
    )


def price(
    prompt_tokens: int,
    max_tokens: int,
    *,
    model: str,
    context: int,
    block_size: int,
    limit: int,
    prompt_param: str = "prompt",
) -> int:
    """The units a job costs; ``InvalidRequest`` if the prompt is empty or overflows the
    model's context, ``JobTooLarge`` if it costs more than ``limit`` (what one worker can
    ever hold).

    ``prompt_tokens`` is exact up to ``context``; beyond, it may be a floor (a counter stops
    counting there), so the message says "at least". ``prompt_param`` names the field that
    holds the prompt (``prompt`` or ``messages``).
    """
    if prompt_tokens == 0:  # nothing to continue from: the engine cannot run a step
        raise InvalidRequest(
            f"the prompt is empty (0 tokens for model {model!r}); send some text", param="prompt"
        )
    if prompt_tokens > context:
        raise InvalidRequest(
            f"the prompt (at least {prompt_tokens} tokens) exceeds the context of model "
            f"{model!r} ({context} tokens)",
            param=prompt_param,
        )
    if prompt_tokens + max_tokens > context:
        raise InvalidRequest(
            f"the prompt ({prompt_tokens} tokens) plus max_tokens ({max_tokens}) exceeds the "
            f"context of model {model!r} ({context} tokens)",
            param="max_tokens",
        )
    cost = job_cost(prompt_tokens, max_tokens, block_size)
    if cost > limit:
        raise JobTooLarge(cost, limit, model)
    return cost
