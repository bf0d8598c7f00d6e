"""OpenAI response bodies and stream chunks, built from job records and events (pure).

``Replies`` holds what every object of one response shares (id, created, model, kind);
the handler feeds it choices' text, finish reasons and logprobs as they come.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ..types import JobRecord, Logprob, TokenEvent
from .schema import CompletionCall

__all__ = ["Replies", "models_list"]


class Replies:
    def __init__(self, call: CompletionCall, job_id: str, created: float | None = None) -> None:
        self._call = call
        self._chat = call.kind == "chat"
        self._id = ("chatcmpl-" if self._chat else "cmpl-") + job_id
        self._created = int(time.time() if created is None else created)
        self._offsets = [0] * len(call.requests)  # characters each choice has streamed

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

    def chunk(
        self,
        index: int,
        *,
        text: str | None = None,
        role: bool = False,
        finish_reason: str | None = None,
        logprobs: Sequence[Logprob] | None = None,
        offset: int = 0,
    ) -> dict[str, Any]:
        """One choice's step: its role (chat, first chunk), new text, or its finish reason."""
        choice: dict[str, Any] = {"index": index}
        if self._chat:
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {}
            if text is not None:
                delta["content"] = text
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
            if self._chat:
                choice["message"] = {"role": "assistant", "content": record.text, "refusal": None}
                choice["logprobs"] = chat_logprobs(lps) if lps else None
            else:
                choice["text"] = record.text
                choice["logprobs"] = text_logprobs(lps, 0) if lps else None
            choice["finish_reason"] = record.finish_reason
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
