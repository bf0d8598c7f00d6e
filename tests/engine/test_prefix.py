"""Prefix caching: the policy alone, then on the tiny model against generate()."""

from __future__ import annotations

from jupyter_llm.engine.base import EngineRequest
from jupyter_llm.engine.local.prefix import PrefixCache

from .test_runner import engine_for, greedy, reference, run


def test_the_longest_common_prefix_wins_and_leaves_one_token_to_run():
    cache = PrefixCache(max_tokens=1000, min_tokens=3)
    cache.put([1, 2, 3, 4, 5, 6], "a")
    cache.put([1, 2, 9, 9, 9, 9], "b")
    hit = cache.match([1, 2, 3, 4, 7, 7])
    assert hit is not None and (hit.length, hit.layers) == (4, "a")
    hit = cache.match([1, 2, 3, 4, 5, 6])  # all of it cached: the last token still runs
    assert hit is not None and hit.length == 5
    assert cache.match([1, 2, 8, 8, 8]) is None  # 2 tokens: under min_tokens
    assert cache.match([7, 2, 3, 4, 5]) is None
    assert cache.hits == 2 and cache.reused_tokens == 9


def test_least_recently_used_entries_leave_and_extended_entries_are_replaced():
    cache = PrefixCache(max_tokens=10, min_tokens=2)
    cache.put([1, 2, 3], "turn 1")
    cache.put([1, 2, 3, 4, 5], "turn 2")  # covers turn 1
    assert len(cache) == 1 and cache.held_tokens == 5
    cache.put([7, 8, 9], "other")
    assert cache.match([1, 2, 3, 4, 0]) is not None  # turn 2 is now the most recent
    cache.put([5, 6, 7, 8], "newest")  # 12 tokens held: the least recent, "other", goes
    assert cache.match([7, 8, 9, 0]) is None
    assert cache.match([1, 2, 3, 4, 5, 6]) is not None and cache.held_tokens == 9
    cache.put(list(range(100, 120)), "too long")  # longer than the whole budget: not kept
    assert cache.held_tokens == 9


SYSTEM = (
    "You are a careful assistant in a Jupyter notebook. Answer briefly, show code when it "
    "helps, and say so when you do not know. "
)


def test_a_chat_turn_reuses_the_last_turn_and_equals_generate(tiny_model_dir, path):
    engine = engine_for(tiny_model_dir)
    assert isinstance(engine.path, path)
    first = SYSTEM + "What is a kernel?"
    tokens, texts, _ = run(engine, {"t1": greedy(first, 12, ignore_eos=True)})
    assert len(engine.prefix) == 1 and engine.prefix.hits == 0
    second = first + texts["t1"] + " And what is a cell?"
    tokens, _, _ = run(engine, {"t2": greedy(second, 12, ignore_eos=True)})
    assert engine.prefix.hits == 1
    assert engine.prefix.reused_tokens >= len(engine.tokenizer(first)["input_ids"]) - 1
    assert tokens["t2"] == reference(tiny_model_dir, second, 12)


def test_prompts_with_and_without_a_cached_prefix_prefill_together(tiny_model_dir, path):
    engine = engine_for(tiny_model_dir)
    assert isinstance(engine.path, path)
    run(engine, {"warm": greedy(SYSTEM + "Hello.", 4, ignore_eos=True)})
    prompts = {
        "a": SYSTEM + "What is pandas?",
        "b": "Queues hold jobs that wait",
        "c": SYSTEM + "Why do caches help?",
        "d": "Tokens stream",
    }
    for job, prompt in prompts.items():  # all in one prefill step
        engine.add(EngineRequest(job, greedy(prompt, 10, ignore_eos=True), 0))
    tokens: dict[str, list[int]] = {job: [] for job in prompts}
    while engine.has_work():
        for out in engine.step():
            tokens[out.job_id] += out.token_ids
    assert engine.prefix.hits == 2
    for job, prompt in prompts.items():
        assert tokens[job] == reference(tiny_model_dir, prompt, 10), job
