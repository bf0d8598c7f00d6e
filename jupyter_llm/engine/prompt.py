"""Turning a request into prompt token ids: one function for the worker and the counter.

Admission prices a job by its prompt tokens before any worker sees it, so the server's
counter and the engine must tokenize identically: both load the tokenizer with
``load_tokenizer`` and call ``encode``. Neither imports torch, so the counter may run in the
server process (in a helper thread).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InvalidRequest
from ..types import GenerationRequest

__all__ = ["encode", "load_tokenizer", "token_counter"]

# transformers' lazy top-level import is not thread-safe: two models' token counters loading
# at once in server helper threads failed with "cannot import name PreTrainedTokenizerFast".
_IMPORT_LOCK = threading.Lock()


def load_tokenizer(model_dir: str) -> Any:
    """The model's fast tokenizer (tokenizer.json), with its chat template.

    Not ``AutoTokenizer``: it reads the model's config through modules that import torch,
    and this also runs in the server. In transformers 5 every fast tokenizer is this class.
    """
    with _IMPORT_LOCK:
        from transformers import PreTrainedTokenizerFast

    if not (Path(model_dir) / "tokenizer.json").is_file():
        raise RuntimeError(
            f"{model_dir} has no tokenizer.json: jupyter_llm needs a fast (tokenizers) tokenizer"
        )
    return PreTrainedTokenizerFast.from_pretrained(model_dir)


def encode(tokenizer: Any, request: GenerationRequest) -> list[int]:
    if request.prompt is not None:
        return list(tokenizer(request.prompt)["input_ids"])
    assert request.messages is not None
    if not getattr(tokenizer, "chat_template", None):
        raise InvalidRequest(
            f"model {request.model!r} has no chat template: send a prompt instead of messages",
            param="messages",
        )
    messages = [{"role": m.role, "content": m.content} for m in request.messages]
    encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if isinstance(encoded, dict) or hasattr(encoded, "keys"):
        encoded = encoded["input_ids"]
    return [int(t) for t in encoded]


class TokenizerCounter:
    """Counts prompt tokens, and tells the pool what inline completions need to know:
    the tokenizer's special tokens (fill-in-the-middle markers among them) and whether it
    has a chat template."""

    def __init__(self, model_dir: str) -> None:
        self._tokenizer = load_tokenizer(model_dir)
        self._lock = threading.Lock()  # a Rust tokenizer may refuse concurrent use
        added = self._tokenizer.get_added_vocab()
        self.special_tokens = frozenset([*added, *self._tokenizer.all_special_tokens])
        self.chat = bool(getattr(self._tokenizer, "chat_template", None))

    def __call__(self, request: GenerationRequest) -> int:
        with self._lock:
            return len(encode(self._tokenizer, request))


def token_counter(model_dir: str) -> Callable[[GenerationRequest], int]:
    return TokenizerCounter(model_dir)
