"""How often bfloat16 greedy output agrees with float32: raw ``generate``, same prompts.

    python benchmarks/dtype_agreement.py [--model smollm2|tiny] [--tokens 64]

For each prompt, greedy decoding in float32 and in bfloat16; prints the share of prompts whose
outputs are identical, the mean share of tokens before the first difference, and the mean
share of positions that agree.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from jupyter_llm.config import DEFAULT_CONFIG, load_config

PROMPTS = [
    "Write a haiku about the sea.",
    "Explain what a Jupyter kernel does in two sentences.",
    "List three uses of Python dictionaries.",
    "What is the capital of France, and why is it famous?",
    "Describe a cat to someone who has never seen one.",
    "Give me a short recipe for pancakes.",
    "Why is the sky blue?",
    "Summarize the plot of Romeo and Juliet.",
]


def model_dir(name: str, tmp: Path) -> Path:
    if name == "tiny":
        from jupyter_llm.engine.local.tiny import build_tiny_llama

        return build_tiny_llama(tmp / "tiny")
    from jupyter_llm.sources.resolve import resolve_model_dir

    return resolve_model_dir(load_config(DEFAULT_CONFIG).model("smollm2"))


def greedy(folder: Path, dtype: torch.dtype, tokens: int) -> list[list[int]]:
    tokenizer: Any = AutoTokenizer.from_pretrained(folder)
    model: Any = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    model.eval()
    outputs = []
    for prompt in PROMPTS:
        if tokenizer.chat_template:
            text = [{"role": "user", "content": prompt}]
            ids = tokenizer.apply_chat_template(
                text, add_generation_prompt=True, return_tensors="pt"
            )
            ids = ids if isinstance(ids, torch.Tensor) else ids["input_ids"]
        else:
            ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=tokens,
                min_new_tokens=tokens,
                do_sample=False,
            )
        outputs.append(out[0, ids.shape[1] :].tolist())
    return outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", default="smollm2", choices=["smollm2", "tiny"])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--folder", type=Path, help="a model folder instead of --model")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or model_dir(args.model, Path(tmp))
        full = greedy(folder, torch.float32, args.tokens)
        half = greedy(folder, torch.bfloat16, args.tokens)
    same = sum(a == b for a, b in zip(full, half, strict=True))
    prefix, positions = [], []
    for a, b in zip(full, half, strict=True):
        first = next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), len(a))
        prefix.append(first / len(a))
        positions.append(sum(x == y for x, y in zip(a, b, strict=True)) / len(a))
    source = args.folder or args.model
    print(f"model {source}, {len(PROMPTS)} prompts x {args.tokens} greedy tokens")
    print(f"identical outputs: {same}/{len(PROMPTS)}")
    print(f"tokens before the first difference: {100 * sum(prefix) / len(prefix):.0f}% (mean)")
    print(f"positions that agree: {100 * sum(positions) / len(positions):.0f}% (mean)")


if __name__ == "__main__":
    main()
