"""Turning a request into prompt token ids: one function for the worker and the counter.

Admission prices a job by its prompt tokens before any worker sees it, so the server's
counter and the engine must tokenize identically: both load the tokenizer with
``load_tokenizer`` and call ``encode``. Neither imports torch, so the counter may run in the
server process (in a helper thread).

A prompt far longer than the context is refused without tokenizing it (12 MB of text took
41 s): no token stands for more characters than the longest in the vocabulary, so the text's
length divided by that is a floor on its tokens, and once the floor passes the context the
count stops there.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

from ..errors import InvalidRequest
from ..types import GenerationRequest
from .base import TokenCounter

__all__ = ["encode", "fewest_tokens", "load_tokenizer", "longest_token", "token_counter"]

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
    _require_template(tokenizer, request)
    messages = [{"role": m.role, "content": m.content} for m in request.messages]
    encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if isinstance(encoded, dict) or hasattr(encoded, "keys"):
        encoded = encoded["input_ids"]
    return [int(t) for t in encoded]


def longest_token(tokenizer: Any) -> int | None:
    """The most characters of text one token can stand for; None when no bound holds.

    A byte-level vocabulary (or one with byte fallback) spells every text with its own
    tokens, each covering at most its length in characters. Without either, one unknown
    token may stand for a whole run of text (WordPiece's ``[UNK]`` for a word, a BPE that
    fuses unknowns), and only counting can tell.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    byte_level = "ByteLevel" in repr(backend.pre_tokenizer) or getattr(
        backend.model, "byte_fallback", False
    )
    if not byte_level:
        return None
    return max((len(piece) for piece in tokenizer.get_vocab()), default=None)


def fewest_tokens(tokenizer: Any, request: GenerationRequest, longest: int, limit: int) -> int:
    """A floor on the request's prompt tokens: 0 when it may fit in ``limit``, else a number
    above ``limit``, found in the time it takes to render the chat template.

    The floor is taken on the text the tokenizer reads (a template may trim or drop what it
    is given; a normalizer may shorten it), never on the request's own strings.
    """
    given = sum(len(m.content) for m in request.messages or ()) + len(request.prompt or "")
    if given <= longest * (limit + 1):
        return 0  # it may fit: only counting can tell
    text = _prompt_text(tokenizer, request)
    normalizer = tokenizer.backend_tokenizer.normalizer
    chars = len(text) if normalizer is None else min(len(text), len(normalizer.normalize_str(text)))
    floor = math.ceil(chars / longest)
    return floor if floor > limit else 0


def _prompt_text(tokenizer: Any, request: GenerationRequest) -> str:
    if request.prompt is not None:
        return request.prompt
    assert request.messages is not None
    _require_template(tokenizer, request)
    messages = [{"role": m.role, "content": m.content} for m in request.messages]
    return str(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))


def _require_template(tokenizer: Any, request: GenerationRequest) -> None:
    if not getattr(tokenizer, "chat_template", None):
        raise InvalidRequest(
            f"model {request.model!r} has no chat template: send a prompt instead of messages",
            param="messages",
        )


def token_counter(model_dir: str) -> TokenCounter:
    tokenizer = load_tokenizer(model_dir)
    longest = longest_token(tokenizer)
    lock = threading.Lock()  # a Rust tokenizer may refuse concurrent use ("Already borrowed")

    def count(request: GenerationRequest, limit: int) -> int:
        if longest is not None:
            floor = fewest_tokens(tokenizer, request, longest, limit)
            if floor:
                return floor
        with lock:
            return len(encode(tokenizer, request))

    return count
