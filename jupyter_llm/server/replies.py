"""OpenAI response bodies and stream chunks, built from job records and events (pure).

``Replies`` holds what every object of one response shares (id, created, model, kind);
the handler feeds it choices' text, finish reasons and logprobs as they come.

With tools, a choice's text is read for tool calls (``message.tool_calls``, streamed as
``delta.tool_calls``, ``finish_reason: "tool_calls"``): with ``tool_choice: auto`` in the
model's own syntax (toolcalls.py); with a named function the whole (constrained) text is its
arguments, streamed as they come; with ``required`` it is one ``{"name", "arguments"}`` object.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from ..structured import ToolCall
from ..toolcalls import Parsed, ToolCallReader, new_call_id, parse
from ..types import JobRecord, Logprob, TokenEvent
from .schema import CompletionCall

__all__ = ["Replies", "models_list"]


class Replies:
    def __init__(
        self,
        call: CompletionCall,
        job_id: str,
        created: float | None = None,
        tool_parser: str = "hermes",
    ) -> None:
        self._call = call
        self._chat = call.kind == "chat"
        self._id = ("chatcmpl-" if self._chat else "cmpl-") + job_id
        self._created = int(time.time() if created is None else created)
        self._offsets = [0] * len(call.requests)  # characters each choice has streamed
        first = call.requests[0]
        self._mode = first.tool_choice.mode if self._chat and first.tools else "none"
        self._function = first.tool_choice.name
        self._parser = tool_parser
        self._readers = [ToolCallReader(tool_parser) for _ in call.requests]
        self._call_ids = [new_call_id() for _ in call.requests]  # a named function's call
        self._held = [""] * len(call.requests)  # tool_choice required: the text so far

    def _head(self, chunk: bool) -> dict[str, Any]:
        kind = "chat.completion.chunk" if chunk else "chat.completion"
        return {
            "id": self._id,
            "object": kind if self._chat else "text_completion",
            "created": self._created,
            "model": self._call.model,
            "system_fingerprint": None,
        }

    # -- streaming -------------------------------------------------------------------------

    def event_chunks(self, index: int, event: TokenEvent) -> list[dict[str, Any]]:
        """The chunks a completed choice's event becomes (failures are the caller's)."""
        if self._mode != "none":
            return self._tool_chunks(index, event)
        chunk = self.event_chunk(index, event)
        return [] if chunk is None else [chunk]

    def event_chunk(self, index: int, event: TokenEvent) -> dict[str, Any] | None:
        """The chunk a completed choice's event becomes, if any (failures are the caller's)."""
        if event.terminal:
            return self.chunk(index, finish_reason=event.finish_reason)
        if event.text or event.token_ids:
            offset = self._offsets[index]
            self._offsets[index] += len(event.text)
            return self.chunk(index, text=event.text, logprobs=event.logprobs, offset=offset)
        # The job's first event says it started: a chat choice opens with its role.
        return self.chunk(index, role=True) if self._chat else None

    def _tool_chunks(self, index: int, event: TokenEvent) -> list[dict[str, Any]]:
        if not event.terminal and not (event.text or event.token_ids):
            return [self.chunk(index, role=True)]
        if self._mode == "function":  # the text is the arguments: stream them as they come
            if event.terminal:
                reason = "tool_calls" if event.finish_reason == "stop" else event.finish_reason
                return [self.chunk(index, finish_reason=reason)]
            if not event.text:
                return []
            opening = self._offsets[index] == 0
            self._offsets[index] += len(event.text)
            delta: dict[str, Any] = {"index": 0, "function": {"arguments": event.text}}
            if opening:
                delta.update(id=self._call_ids[index], type="function")
                delta["function"] = {"name": self._function, "arguments": event.text}
            return [self.chunk(index, tool_calls=[delta])]
        if self._mode == "required":  # one JSON object: nothing to show until it is whole
            if not event.terminal:
                self._held[index] += event.text
                return []
            parsed = _required(self._held[index])
        else:
            reader = self._readers[index]
            if not event.terminal:
                text = reader.feed(event.text)
                return [self.chunk(index, text=text)] if text else []
            parsed = reader.finish()
        chunks = []
        if parsed.content:
            chunks.append(self.chunk(index, text=parsed.content))
        calls = self._kept(parsed.calls)
        if calls:
            deltas = [dict(call.to_openai(), index=i) for i, call in enumerate(calls)]
            chunks.append(self.chunk(index, tool_calls=deltas))
        reason = "tool_calls" if calls else event.finish_reason
        chunks.append(self.chunk(index, finish_reason=reason))
        return chunks

    def _kept(self, calls: Sequence[ToolCall]) -> list[ToolCall]:
        return list(calls if self._call.parallel_tool_calls else calls[:1])

    def _message(self, index: int, text: str) -> Parsed:
        """A whole answer's content and tool calls."""
        if self._mode == "none":
            return Parsed(text)
        if self._mode == "function":
            assert self._function is not None
            return Parsed(None, (ToolCall(self._call_ids[index], self._function, text),))
        parsed = _required(text) if self._mode == "required" else parse(self._parser, text)
        return Parsed(parsed.content, tuple(self._kept(parsed.calls)))

    def chunk(
        self,
        index: int,
        *,
        text: str | None = None,
        role: bool = False,
        finish_reason: str | None = None,
        logprobs: Sequence[Logprob] | None = None,
        offset: int = 0,
        tool_calls: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """One choice's step: its role (chat, first chunk), new text, or its finish reason."""
        choice: dict[str, Any] = {"index": index}
        if self._chat:
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {}
            if text is not None:
                delta["content"] = text
            if tool_calls is not None:
                delta["tool_calls"] = tool_calls
            choice["delta"] = delta
            choice["logprobs"] = chat_logprobs(logprobs) if logprobs else None
        else:
            choice["text"] = text or ""
            choice["logprobs"] = text_logprobs(logprobs, offset) if logprobs else None
        choice["finish_reason"] = finish_reason
        data = self._head(chunk=True)
        data["choices"] = [choice]
        if self._call.include_usage:
            data["usage"] = None  # OpenAI's shape: every chunk has it, the last one fills it
        return data

    def usage_chunk(self, records: Sequence[JobRecord]) -> dict[str, Any]:
        data = self._head(chunk=True)
        data["choices"] = []
        data["usage"] = self.usage(records)
        return data

    # -- whole answers ---------------------------------------------------------------------

    def completion(
        self, records: Sequence[JobRecord], logprobs: Sequence[Sequence[Logprob]]
    ) -> dict[str, Any]:
        """The non-streaming body; ``records[i]`` (all completed) answers choice ``i``."""
        choices = []
        for index, (record, lps) in enumerate(zip(records, logprobs, strict=True)):
            choice: dict[str, Any] = {"index": index}
            reason = record.finish_reason
            if self._chat:
                parsed = self._message(index, record.text)
                message: dict[str, Any] = {
                    "role": "assistant",
                    "content": parsed.content,
                    "refusal": None,
                }
                if parsed.calls:
                    message["tool_calls"] = [call.to_openai() for call in parsed.calls]
                    reason = "tool_calls" if reason == "stop" else reason
                choice["message"] = message
                choice["logprobs"] = chat_logprobs(lps) if lps else None
            else:
                choice["text"] = record.text
                choice["logprobs"] = text_logprobs(lps, 0) if lps else None
            choice["finish_reason"] = reason
            choices.append(choice)
        data = self._head(chunk=False)
        data["choices"] = choices
        data["usage"] = self.usage(records)
        return data

    def usage(self, records: Sequence[JobRecord]) -> dict[str, int]:
        """Each prompt counts once, however many choices it has; every choice's tokens count."""
        prompts: dict[int, int] = {}
        for prompt, record in zip(self._call.prompt_of, records, strict=True):
            prompts.setdefault(prompt, record.usage.prompt_tokens)
        prompt_tokens = sum(prompts.values())
        completion_tokens = sum(r.usage.completion_tokens for r in records)
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }


def _required(text: str) -> Parsed:
    """``tool_choice: required``: the text is one ``{"name", "arguments"}`` object (a remote
    upstream may send several, one after the other)."""
    decoder = json.JSONDecoder()
    calls = []
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            break
        try:
            data, at = decoder.raw_decode(text, at)
        except ValueError:
            return Parsed(text or None)
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            return Parsed(text or None)
        arguments = json.dumps(data.get("arguments", {}), ensure_ascii=False)
        calls.append(ToolCall(new_call_id(), data["name"], arguments))
    return Parsed(None, tuple(calls)) if calls else Parsed(text or None)


def chat_logprobs(logprobs: Sequence[Logprob]) -> dict[str, Any]:
    return {
        "content": [
            {
                "token": lp.token,
                "logprob": lp.logprob,
                "bytes": list(lp.token.encode()),
                "top_logprobs": [
                    {"token": token, "logprob": value, "bytes": list(token.encode())}
                    for token, _, value in lp.top
                ],
            }
            for lp in logprobs
        ],
        "refusal": None,
    }


def text_logprobs(logprobs: Sequence[Logprob], offset: int) -> dict[str, Any]:
    offsets = []
    for lp in logprobs:
        offsets.append(offset)
        offset += len(lp.token)
    return {
        "tokens": [lp.token for lp in logprobs],
        "token_logprobs": [lp.logprob for lp in logprobs],
        "top_logprobs": [{token: value for token, _, value in lp.top} for lp in logprobs],
        "text_offset": offsets,
    }


def models_list(names: Sequence[str], created: float) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": int(created), "owned_by": "jupyter_llm"}
            for name in names
        ],
    }
