"""Quantized matmul weights: int8 close to float32 on the tiny model; what ``auto`` keeps."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from jupyter_llm.engine.local import quant
from jupyter_llm.engine.local.llama import Llama

CPU = torch.device("cpu")


def last_logits(model: Llama) -> torch.Tensor:
    prompt = [5, 17, 42, 99, 3, 250, 8]
    cache = model.new_cache(1, 64)
    cache.claim("a")
    with torch.inference_mode():
        return model(
            torch.tensor([prompt]), torch.arange(len(prompt))[None], cache, 0, torch.tensor([6])
        )[0]


def test_int8_logits_stay_close_to_float32_and_pick_the_same_token(tiny_model_dir: Path):
    hf = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    reference = last_logits(Llama(hf, 64))
    quantized = last_logits(Llama(hf, 64, "int8"))
    assert int(quantized.argmax()) == int(reference.argmax())
    assert (quantized - reference).abs().max() < 0.05 * reference.abs().max()


def test_a_prompts_large_first_row_does_not_swamp_the_others():
    weight = torch.randn(64, 128)
    x = torch.randn(3, 128)
    x[0] *= 1000  # a first token's outsized activations
    out = quant.linear(x, quant.quantize(weight, "int8"), None)
    expected = x @ weight.T
    error = (out[1:] - expected[1:]).norm() / expected[1:].norm()
    assert error < 0.02  # one scale for all three rows: ~100% (nothing left but rounding)


@pytest.mark.parametrize(
    ("asked", "types", "kind"),
    [
        ("auto", {"Q4_1", "Q8_0"}, "int8"),
        ("auto", {"Q4_K", "Q6_K"}, "int8"),
        ("auto", {"F16"}, "none"),
        ("auto", {"IQ2_XS", "Q4_K"}, "none"),
        ("auto", None, "none"),
        ("int4", None, "int4"),
        ("none", {"Q8_0"}, "none"),
    ],
)
def test_resolve(asked: str, types: set[str] | None, kind: str):
    assert quant.resolve(asked, types, CPU) == kind


def test_int8_on_a_gpu_is_an_error_and_auto_is_float_there():
    with pytest.raises(ValueError, match="CPU only"):
        quant.resolve("int8", None, torch.device("cuda"))
    assert quant.resolve("auto", {"Q4_1"}, torch.device("cuda")) == "none"


def test_an_int8_engine_reports_its_matmul_and_generates(tiny_model_dir):
    from jupyter_llm.engine.base import EngineRequest
    from jupyter_llm.types import GenerationRequest, SamplingParams

    from .test_runner import engine_for

    engine = engine_for(tiny_model_dir, quantization="int8")
    info = engine.info()
    assert (info.dtype, info.matmul) == ("float32", "int8, FBGEMM dynamic")
    request = GenerationRequest(
        "m", prompt="The quick brown fox", params=SamplingParams(max_tokens=6, ignore_eos=True)
    )
    engine.add(EngineRequest("j", request, 0))
    outputs = []
    while engine.has_work():
        outputs += engine.step()
    assert outputs[-1].finish_reason == "length"
    assert sum(len(o.token_ids) for o in outputs) == 6
