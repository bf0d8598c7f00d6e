"""A tiny random Llama with a real BPE tokenizer, built offline in about a second.

It drives the real transformers paths (tokenizer, chat template, KV cache, sampling) at
500-3,000 tok/s on a CPU, for tests, benchmarks and demos; its text is gibberish. Weights
come from a fixed seed, so the same call builds the same model.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CHAT_TEMPLATE", "build_tiny_llama"]

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = """The quick brown fox jumps over the lazy dog. A notebook runs cells one at a time.
Jupyter kernels execute code and send results back to the browser. Tokens stream into the cell.
Large language models predict the next token from the ones before it. Caches keep keys and values.
Queues hold jobs that wait for room; deadlines bound the wait; cancelled jobs give units back.
Data scientists explore data with pandas, plot with matplotlib, and train models with torch.
Émile a écrit « déjà vu » — naïve café, 東京, 😀 emoji and accents make bytes longer than chars.
def add(a, b):\n    return a + b\nfor i in range(10):\n    print(i * i)\n"""


def build_tiny_llama(
    target: Path,
    seed: int = 0,
    vocab_size: int = 512,
    *,
    chat_template: str = CHAT_TEMPLATE,
    special_tokens: tuple[str, ...] = ("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
    added_tokens: tuple[str, ...] = (),
    eos_token: str = "<|im_end|>",
) -> Path:
    """Write the model folder at ``target`` (created) and return it.

    ``chat_template``, ``special_tokens`` (control tokens, dropped from decoded text),
    ``added_tokens`` (whole tokens that stay in the text, as Qwen's ``<tool_call>``) and
    ``eos_token`` give it another family's chat format; the first special token pads.
    """
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import (
        GenerationConfig,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    target.mkdir(parents=True, exist_ok=True)
    specials = list(special_tokens)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        [_CORPUS] * 20, vocab_size=vocab_size, min_frequency=1, special_tokens=specials
    )
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=bpe._tokenizer,
        eos_token=eos_token,
        pad_token=specials[0],
        bos_token=None,
    )
    if added_tokens:
        tokenizer.add_tokens(list(added_tokens))
    tokenizer.chat_template = chat_template
    eos = tokenizer.convert_tokens_to_ids(eos_token)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        initializer_range=0.1,  # sharper logits than the default 0.02: greedy ties are rare
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        eos_token_id=eos, pad_token_id=tokenizer.pad_token_id
    )
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target
