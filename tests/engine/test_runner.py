"""The transformers engine on real models: batched output equals generate() alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from jupyter_llm.config import parse_config
from jupyter_llm.engine.base import EngineRequest
from jupyter_llm.engine.local.device import onednn_packs
from jupyter_llm.engine.local.spec import TransformersSpec
from jupyter_llm.types import GenerationRequest, Message, SamplingParams

PROMPTS = [
    "The quick brown fox",
    "Jupyter kernels execute",
    "def add(a, b):",
    "Queues hold jobs that wait",
    "Émile a écrit",
    "Data scientists explore data with pandas, plot with matplotlib",
    "A",
    "Caches keep keys and values. Tokens stream",
]


def engine_for(model_dir: Path, **params):
    config = parse_config(
        {
            "models": [
                {
                    "name": "m",
                    "local_path": str(model_dir),
                    "params": {"dtype": "float32", **params},
                }
            ]
        },
        "test.yaml",
        Path("."),
    )
    return TransformersSpec.for_model(config.models[0]).build(0)


def greedy(prompt: str, max_tokens: int, **params) -> GenerationRequest:
    return GenerationRequest(
        "m", prompt=prompt, params=SamplingParams(max_tokens=max_tokens, temperature=0, **params)
    )


def run(
    engine,
    requests: dict[str, GenerationRequest],
    join_every: int = 3,
    abort: dict[str, int] | None = None,
):
    """Add one request every ``join_every`` steps; abort some after a number of steps."""
    tokens = {job: [] for job in requests}
    texts = {job: "" for job in requests}
    finish = {}
    pending = list(requests.items())
    step = 0
    while pending or engine.has_work():
        if pending and step % join_every == 0:
            job, request = pending.pop(0)
            engine.add(EngineRequest(job, request, 0))
        for job, at in (abort or {}).items():
            if at == step:
                engine.abort(job)
                finish[job] = "aborted"
        for out in engine.step():
            tokens[out.job_id] += out.token_ids
            texts[out.job_id] += out.text
            if out.finish_reason:
                finish[out.job_id] = out.finish_reason
        step += 1
    return tokens, texts, finish


def reference(model_dir: Path, prompt: str, max_tokens: int) -> list[int]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ids = tokenizer(prompt, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=max_tokens, do_sample=False)
    return out[0, ids["input_ids"].shape[1] :].tolist()


def assert_equals_generate(model_dir: Path, path, max_tokens: int, max_num_seqs: int = 8):
    engine = engine_for(model_dir, max_num_seqs=max_num_seqs)
    assert isinstance(engine.path, path)
    requests = {f"job{i}": greedy(p, max_tokens) for i, p in enumerate(PROMPTS)}
    tokens, texts, finish = run(engine, requests, abort={"job3": 9})
    for i, prompt in enumerate(PROMPTS):
        job = f"job{i}"
        if finish[job] == "aborted":
            continue
        expected = reference(model_dir, prompt, max_tokens)
        assert tokens[job] == expected, f"{job} ({prompt!r}) differs from generate()"
        decoded = engine.tokenizer.decode(tokens[job], skip_special_tokens=True)
        assert texts[job] == decoded.rstrip("\ufffd")
    assert not engine.has_work() and len(engine.path) == 0


def test_staggered_greedy_equals_generate_alone_tiny(tiny_model_dir, path):
    assert_equals_generate(tiny_model_dir, path, max_tokens=40)


@pytest.mark.slow
def test_staggered_greedy_equals_generate_alone_smollm2(smollm2_dir, path):
    assert_equals_generate(smollm2_dir, path, max_tokens=24)


def test_max_num_seqs_bounds_the_batch(tiny_model_dir, path):
    engine = engine_for(tiny_model_dir, max_num_seqs=2)
    for i, prompt in enumerate(PROMPTS[:5]):
        engine.add(EngineRequest(f"j{i}", greedy(prompt, 20), 0))
    seen = 0
    while engine.has_work():
        engine.step()
        seen = max(seen, len(engine.path))
    assert seen == 2


def test_a_seed_gives_the_same_text_whatever_else_is_in_the_batch(tiny_model_dir, path):
    engine = engine_for(tiny_model_dir)
    sampled = GenerationRequest(
        "m", prompt="Tokens stream", params=SamplingParams(max_tokens=30, temperature=1.0, seed=5)
    )
    alone, _, _ = run(engine, {"s": sampled})
    others = {
        f"o{i}": GenerationRequest(
            "m", prompt=p, params=SamplingParams(max_tokens=30, temperature=0.9, seed=i)
        )
        for i, p in enumerate(PROMPTS[:4])
    }
    crowded, _, _ = run(engine, {**others, "s": sampled}, join_every=1)
    assert crowded["s"] == alone["s"]
    other_seed = GenerationRequest(
        "m", prompt="Tokens stream", params=SamplingParams(max_tokens=30, temperature=1.0, seed=6)
    )
    assert run(engine, {"s": other_seed})[0]["s"] != alone["s"]


def test_stop_strings_and_stop_token_ids_end_the_sequence(tiny_model_dir):
    engine = engine_for(tiny_model_dir)
    full_tokens, full_texts, _ = run(engine, {"a": greedy("The quick brown fox", 40)})
    text = full_texts["a"]
    stop = text[len(text) // 2 : len(text) // 2 + 3]
    _, texts, finish = run(engine, {"a": greedy("The quick brown fox", 40, stop=(stop,))})
    assert finish["a"] == "stop" and texts["a"] == text[: text.index(stop)]
    stop_id = full_tokens["a"][5]
    tokens, _, finish = run(
        engine, {"a": greedy("The quick brown fox", 40, stop_token_ids=(stop_id,))}
    )
    assert finish["a"] == "stop" and tokens["a"][-1] == stop_id and stop_id not in tokens["a"][:-1]


def test_chat_messages_use_the_chat_template(tiny_model_dir):
    engine = engine_for(tiny_model_dir)
    messages = (Message("system", "Be brief."), Message("user", "Hello there"))
    request = GenerationRequest(
        "m", messages=messages, params=SamplingParams(max_tokens=5, temperature=0)
    )
    engine.add(EngineRequest("c", request, 0))
    assert (
        engine.scheduler.waiting[0].prompt_ids
        == engine.tokenizer.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in messages],
            add_generation_prompt=True,
            tokenize=True,
        )["input_ids"]
    )


def test_logprobs_come_with_each_token_when_asked(tiny_model_dir):
    engine = engine_for(tiny_model_dir)
    engine.add(EngineRequest("l", greedy("Queues hold", 4, logprobs=True, top_logprobs=2), 0))
    outputs = []
    while engine.has_work():
        outputs += engine.step()
    assert len(outputs) == 4
    for out in outputs:
        (lp,) = out.logprobs
        assert lp.token_id == out.token_ids[0] and lp.logprob <= 0 and len(lp.top) == 2
        assert lp.top[0][1] == lp.token_id  # greedy: the chosen token is the most likely


def test_units_follow_the_cache_memory_and_kv_size(tiny_model_dir):
    engine = engine_for(tiny_model_dir, kvcache_mem_cpu=1, block_size=16)
    # 2 layers x 2 kv heads x 16 head dim x 2 (k, v) x 4 bytes = 512 bytes a token
    assert engine.info().units == 1024 * 1024 // (512 * 16)
    assert engine.info().tokenizer == str(tiny_model_dir)


def test_out_of_memory_in_a_step_fails_its_jobs_and_the_engine_goes_on(tiny_model_dir, path):
    engine = engine_for(tiny_model_dir)
    engine.add(EngineRequest("a", greedy("The quick brown fox", 20), 0))
    engine.step()  # a is prefilled and running
    engine.add(EngineRequest("b", greedy("Jupyter kernels execute", 20), 0))

    def out_of_memory(module, args, kwargs):
        hook.remove()  # once: the device recovers after the step is dropped
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    hook = engine.model.register_forward_pre_hook(out_of_memory, with_kwargs=True)
    (failed,) = engine.step()  # the decode step for a
    assert failed.job_id == "a" and failed.finish_reason == "error"
    assert "out of memory on cpu in this step" in failed.error and "2.00 GiB" in failed.error
    assert len(engine.path) == 0  # a's cache is gone, its units with it
    tokens = []
    while engine.has_work():  # b, still waiting, runs as if nothing happened
        for out in engine.step():
            assert out.job_id == "b"
            tokens += out.token_ids
    assert tokens == reference(tiny_model_dir, "Jupyter kernels execute", 20)


@pytest.mark.gpu
def test_staggered_greedy_equals_generate_on_cuda(tiny_model_dir):
    engine = engine_for(tiny_model_dir, device="cuda", max_num_seqs=8)
    assert engine.device.type == "cuda"
    requests = {f"job{i}": greedy(p, 24) for i, p in enumerate(PROMPTS)}
    tokens, _, _ = run(engine, requests)
    for i, prompt in enumerate(PROMPTS):
        assert tokens[f"job{i}"] == reference(tiny_model_dir, prompt, 24)


@pytest.mark.gpu
def test_a_real_cuda_out_of_memory_fails_the_step_not_the_worker(tiny_model_dir):
    engine = engine_for(tiny_model_dir, device="cuda")
    free, _ = torch.cuda.mem_get_info(engine.device)
    hog = torch.empty(int(free * 0.98), dtype=torch.uint8, device=engine.device)
    long_prompt = " ".join(["Tokens stream into the cell."] * 300)
    for i in range(8):
        engine.add(EngineRequest(f"big{i}", greedy(long_prompt, 8), 0))
    outputs = engine.step()
    assert outputs and all(
        o.finish_reason == "error" and "out of memory" in o.error for o in outputs
    )
    del hog
    torch.cuda.empty_cache()
    tokens, _, finish = run(engine, {"after": greedy("The quick brown fox", 8)})
    assert finish["after"] == "length" and len(tokens["after"]) == 8


def test_bfloat16_runs_the_same_paths(tiny_model_dir, path):
    """bfloat16 loads on every CPU: where oneDNN cannot pack it (AVX2 only), in float32."""
    engine = engine_for(tiny_model_dir, dtype="bfloat16")
    native = onednn_packs(torch.bfloat16)
    assert engine.model.dtype == (torch.bfloat16 if native else torch.float32)
    info = engine.info()
    assert info.dtype == ("bfloat16" if native else "float32")
    fast = path.__name__ == "LlamaPath" and onednn_packs(torch.float32)
    assert info.matmul == ("oneDNN packed" if fast else "unpacked")
    requests = {f"job{i}": greedy(p, 12, ignore_eos=True) for i, p in enumerate(PROMPTS[:4])}
    tokens, _, finish = run(engine, requests, join_every=1)
    assert all(len(tokens[job]) == 12 and finish[job] == "length" for job in requests)
