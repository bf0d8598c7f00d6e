"""The Llama fast path's forward on the tiny model, against transformers' forward of the
same weights: mixed lengths, each row at its own positions, reused slots, prefix hits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

from jupyter_llm.engine.local.llama import Llama, unsupported
from jupyter_llm.engine.local.llama_path import layout

ATOL = 1e-4  # float32: the same ops, in a different batching


@pytest.fixture(scope="module")
def hf(tiny_model_dir: Path):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


def expected(hf, tokens: list[int]) -> torch.Tensor:
    """transformers' next-token logits after ``tokens``, alone."""
    with torch.inference_mode():
        return hf(input_ids=torch.tensor([tokens])).logits[0, -1]


def prefill(model: Llama, cache, prompts: list[list[int]], first: int) -> torch.Tensor:
    """Right-padded prompts in slots ``first ..``, as the fast path runs them."""
    longest = max(map(len, prompts))
    ids = torch.zeros((len(prompts), longest), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, : len(prompt)] = torch.tensor(prompt)
    positions = torch.arange(longest).expand(len(prompts), -1)
    last = torch.tensor([len(p) - 1 for p in prompts])
    with torch.inference_mode():
        return model(ids, positions, cache, first, last)


def decode(model: Llama, cache, tokens: list[int], positions: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return model(
            torch.tensor([[t] for t in tokens]),
            torch.tensor([[p] for p in positions]),
            cache,
            0,
            torch.zeros(len(tokens), dtype=torch.long),
        )


PROMPTS = [[5, 17, 42, 99, 3, 250, 8], [7, 7, 300], [11, 400, 23, 56, 1]]


def test_rows_of_mixed_lengths_each_get_their_own_logits(hf):
    model = Llama(hf, 64)
    cache = model.new_cache(4, 64)
    for job in "abc":
        cache.claim(job)
    logits = prefill(model, cache, PROMPTS, 0)
    for row, prompt in enumerate(PROMPTS):
        torch.testing.assert_close(logits[row], expected(hf, prompt), atol=ATOL, rtol=0)
    # Decode: each row writes the column at its own position, and sees only its own tokens.
    nxt = [31, 32, 33]
    logits = decode(model, cache, nxt, [len(p) for p in PROMPTS])
    for row, prompt in enumerate(PROMPTS):
        torch.testing.assert_close(
            logits[row], expected(hf, [*prompt, nxt[row]]), atol=ATOL, rtol=0
        )
    # The next decode writes b's column 4 and nothing else of b's (once the columns it
    # reads, up to a's position 8, are finite).
    # (Columns past 8 were never written nor read: whatever fresh memory held.)
    cache.prepare(0, 3, 9)
    keys_before = cache.keys[:, 1, :, :9].clone()
    decode(model, cache, [1, 2, 3], [len(p) + 1 for p in PROMPTS])
    changed = (cache.keys[:, 1, :, :9] != keys_before).any(dim=(0, 1, 3)).nonzero().flatten()
    assert changed.tolist() == [4]


def test_a_leaving_rows_slot_is_reused_and_the_moved_row_goes_on(hf):
    model = Llama(hf, 64)
    cache = model.new_cache(3, 64)
    a, b = PROMPTS[0], PROMPTS[1]
    cache.claim("a")
    cache.claim("b")
    prefill(model, cache, [a, b], 0)
    cache.lengths[:2] = [len(a), len(b)]
    cache.release("a")  # b moves into slot 0
    cache.claim("c")  # and c takes slot 1, where b was
    c = PROMPTS[2]
    torch.testing.assert_close(prefill(model, cache, [c], 1)[0], expected(hf, c), atol=ATOL, rtol=0)
    logits = decode(model, cache, [40, 41], [len(b), len(c)])
    torch.testing.assert_close(logits[0], expected(hf, [*b, 40]), atol=ATOL, rtol=0)
    torch.testing.assert_close(logits[1], expected(hf, [*c, 41]), atol=ATOL, rtol=0)


def test_a_prefix_hit_copies_cached_keys_and_values_and_runs_the_rest(hf):
    model = Llama(hf, 64)
    cache = model.new_cache(2, 64)
    first = [9, 8, 7, 6, 5, 4, 3, 2]
    cache.claim("first")
    prefill(model, cache, [first], 0)
    keys, values = cache.take(0, len(first))
    cache.release("first")
    second = [*first[:6], 100, 101, 102]  # shares 6 tokens
    slot = cache.claim("second")
    cache.keys.fill_(float("nan"))  # nothing of the first run is left to lean on
    cache.values.fill_(float("nan"))
    cache._clean = [0, 0]
    cache.put(slot, keys[:, :, :6], values[:, :, :6])
    with torch.inference_mode():
        logits = model(
            torch.tensor([second[6:]]), torch.arange(6, 9)[None], cache, slot, torch.tensor([2])
        )
    torch.testing.assert_close(logits[0], expected(hf, second), atol=ATOL, rtol=0)


def test_only_llama_models_with_a_fixed_rope_take_the_fast_path():
    assert unsupported(LlamaConfig()) is None
    assert "not llama" in unsupported(Qwen2Config())
    dynamic = LlamaConfig(rope_parameters={"rope_type": "dynamic", "factor": 2.0})
    assert "changes with the sequence length" in unsupported(dynamic)
    assert "not silu" in unsupported(LlamaConfig(hidden_act="gelu"))


def test_the_cache_layout_follows_the_budget():
    # 16 sequences share 46,603 tokens: 2,912 each (whole blocks), under the 8,192 context.
    assert layout(46603, 16, 8192, False, 16) == (16, 2912)
    # Many sequences: slots keep at least 2,048 tokens, so there are fewer of them.
    assert layout(46603, 256, 8192, False, 16) == (22, 2048)
    # The budget holds every sequence at the full context.
    assert layout(1_000_000, 16, 2048, False, 16) == (16, 2048)
    # A context set in the config is kept: fewer slots.
    assert layout(46603, 16, 8192, True, 16) == (5, 8192)
