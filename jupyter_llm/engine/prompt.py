"""Turning a request into prompt token ids: one function for the worker and the counter.

Admission prices a job by its prompt tokens before any worker sees it, so the server's
counter and the engine must tokenize identically: both load the tokenizer with
``load_tokenizer`` and call ``encode``. Neither imports torch, so the counter may run in the
server process (in a helper thread).

A prompt far longer than the context is refused without tokenizing it (tokenizing megabytes
takes seconds): no token stands for more characters than the longest in the vocabulary, so
the text's length divided by that is a floor on its tokens, and once the floor passes the
context the count stops there.

A request's tools go through the model's own chat template (``tools=``), which teaches the
model its family's call syntax. A template that never reads ``tools`` would drop them
silently: the tools are then described in a system message, in Hermes' words, and the
answer is read with the ``hermes`` parser (toolcalls.py).
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

from ..errors import InvalidRequest
from ..toolcalls import detect
from ..types import GenerationRequest, Message
from .base import TokenCounter

__all__ = [
    "encode",
    "fewest_tokens",
    "load_tokenizer",
    "longest_token",
    "token_counter",
    "tool_parser",
]
_HERMES_SYSTEM = (
    "You may call one or more functions to assist with the user query. The functions are "
    "described in JSON within <tools></tools> XML tags:\n<tools>\n{tools}\n</tools>\n\n"
    "To call a function, return a JSON object with the function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{{"name": <function-name>, "arguments": <args-json-object>}}\n</tool_call>'
)

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
    messages, extra = _template_input(tokenizer, request)
    encoded = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, **extra
    )
    if isinstance(encoded, dict) or hasattr(encoded, "keys"):
        encoded = encoded["input_ids"]
    return [int(t) for t in encoded]


def tool_parser(tokenizer: Any, override: str | None) -> str:
    """The tool-call parser for this model: the config's, else its template's family."""
    if override:
        return override
    template = getattr(tokenizer, "chat_template", None)
    if not isinstance(template, str) or "tools" not in template:
        return "hermes"  # we describe the tools ourselves, in Hermes' syntax
    return detect(template)


def _template_message(message: Message) -> dict[str, Any]:
    """The message as OpenAI writes it, but with tool-call arguments as the chat template
    reads them (``ToolCall.to_template``)."""
    data = message.to_dict()
    if message.tool_calls:
        data["tool_calls"] = [call.to_template() for call in message.tool_calls]
    return data


def _described(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tools in a system message, and tool turns as text, for a template without tools."""
    described = "\n".join(json.dumps(tool, ensure_ascii=False) for tool in tools)
    system = _HERMES_SYSTEM.format(tools=described)
    out: list[dict[str, Any]] = []
    for message in messages:
        if message["role"] == "tool":
            out.append(
                {
                    "role": "user",
                    "content": f"<tool_response>\n{message['content']}\n</tool_response>",
                }
            )
            continue
        calls = message.get("tool_calls")
        if calls:
            text = "".join(
                "<tool_call>\n"
                + json.dumps(
                    {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}
                )
                + "\n</tool_call>"
                for c in calls
            )
            out.append({"role": "assistant", "content": (message["content"] + text).strip()})
            continue
        out.append({"role": message["role"], "content": message["content"]})
    if out and out[0]["role"] == "system":
        out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{system}"}
    else:
        out.insert(0, {"role": "system", "content": system})
    return out


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
    messages, extra = _template_input(tokenizer, request)
    return str(
        tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **extra)
    )


def _template_input(
    tokenizer: Any, request: GenerationRequest
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The messages and keyword arguments for the chat template, tools included."""
    assert request.messages is not None
    _require_template(tokenizer, request)
    messages = [_template_message(m) for m in request.messages]
    extra: dict[str, Any] = {}
    if request.tools and request.tool_choice.mode != "none":
        tools = [t.to_openai() for t in request.tools]
        if "tools" in str(tokenizer.chat_template):
            extra["tools"] = tools
        else:
            messages = _described(messages, tools)
    return messages, extra


def _require_template(tokenizer: Any, request: GenerationRequest) -> None:
    if not getattr(tokenizer, "chat_template", None):
        raise InvalidRequest(
            f"model {request.model!r} has no chat template: send a prompt instead of messages",
            param="messages",
        )


class TokenizerCounter:
    """Counts prompt tokens, and tells the pool what inline completions need to know: the
    tokenizer's special tokens (fill-in-the-middle markers among them) and whether it has a
    chat template."""

    def __init__(self, model_dir: str) -> None:
        self._tokenizer = load_tokenizer(model_dir)
        self._lock = threading.Lock()  # a Rust tokenizer may refuse concurrent use
        self._longest = longest_token(self._tokenizer)
        self._vocabulary = len(self._tokenizer)
        added = self._tokenizer.get_added_vocab()
        self.special_tokens = frozenset([*added, *self._tokenizer.all_special_tokens])
        self.chat = bool(getattr(self._tokenizer, "chat_template", None))

    def __call__(self, request: GenerationRequest, limit: int) -> int:
        # Checked here, before the job is accepted, so a bad id is a 400 and not a job that
        # fails in its worker.
        for token_id, _ in request.params.logit_bias:
            if token_id >= self._vocabulary:
                raise InvalidRequest(
                    f"logit_bias: token {token_id} is not in this model's vocabulary of "
                    f"{self._vocabulary}",
                    param="logit_bias",
                )
        if self._longest is not None:
            floor = fewest_tokens(self._tokenizer, request, self._longest, limit)
            if floor:
                return floor
        with self._lock:
            return len(encode(self._tokenizer, request))


def token_counter(model_dir: str) -> TokenCounter:
    return TokenizerCounter(model_dir)
