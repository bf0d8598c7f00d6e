"""Frozen values that cross module and process boundaries.

Requests, sampling parameters, events and records are immutable: the pool hands them to
worker processes (pickled), to asyncio consumers and to the mailbox without copies or locks.
What only the pool and an engine exchange (``EngineRequest``, ``StepOutput``,
``EngineInfo``) lives with the engine seam, in ``engine/base.py``.
Each validates itself on construction and raises ``InvalidRequest`` naming the parameter.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from .errors import InvalidRequest, LLMError, UnsupportedParameter, job_failure
from .structured import ResponseFormat, Tool, ToolCall, ToolChoice, canonical_json, output_schema
from .validate import SAMPLING, check_range, is_int, is_number

__all__ = [
    "CompletionInput",
    "GenerationRequest",
    "JobRecord",
    "JobStatus",
    "Logprob",
    "Message",
    "Priority",
    "SamplingParams",
    "Timings",
    "TokenEvent",
    "Usage",
]


class Priority(StrEnum):
    """Queue priority: a higher one is always served first; FIFO within one."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return _PRIORITY_RANK[self]

    @classmethod
    def parse(cls, value: str | Priority) -> Priority:
        try:
            return cls(value)
        except ValueError:
            raise InvalidRequest(
                f"priority must be one of low, normal, high; got {value!r}", param="priority"
            ) from None


_PRIORITY_RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2}


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        return self not in (JobStatus.QUEUED, JobStatus.RUNNING)


def _check(ok: bool, param: str, message: str) -> None:
    if not ok:
        raise InvalidRequest(f"{param}: {message}", param=param)


#: Sampling parameters whose ``None`` means "the model's default" (or, for seed, "random").
_NULLABLE = frozenset({"max_tokens", "temperature", "seed"})


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Per-request sampling. ``None`` means "the model's default" and is resolved at submit."""

    max_tokens: int | None = None
    temperature: float | None = None  # 0 is greedy
    top_p: float = 1.0
    top_k: int = 0  # 0: off
    min_p: float = 0.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    ignore_eos: bool = False  # generate past end-of-sequence tokens (benchmarks, as in vLLM)
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, added to its logit), -100..100

    def __post_init__(self) -> None:
        for name, accepted in SAMPLING.items():
            value = getattr(self, name)
            if value is not None or name not in _NULLABLE:
                check_range(value, accepted, name)
        _check(
            isinstance(self.stop, tuple)
            and len(self.stop) <= 16
            and all(isinstance(s, str) and s for s in self.stop),
            "stop",
            f"expected up to 16 non-empty strings, got {self.stop!r}",
        )
        _check(
            isinstance(self.stop_token_ids, tuple)
            and all(is_int(t) and t >= 0 for t in self.stop_token_ids),
            "stop_token_ids",
            f"expected token ids (integers of at least 0), got {self.stop_token_ids!r}",
        )
        _check(
            isinstance(self.ignore_eos, bool),
            "ignore_eos",
            f"expected true or false, got {self.ignore_eos!r}",
        )
        _check(
            isinstance(self.logprobs, bool),
            "logprobs",
            f"expected true or false, got {self.logprobs!r}",
        )
        _check(
            isinstance(self.logit_bias, tuple)
            and len(self.logit_bias) <= 300
            and all(
                isinstance(pair, tuple)
                and len(pair) == 2
                and is_int(pair[0])
                and 0 <= pair[0] < 2**31
                and is_number(pair[1])
                and -100 <= pair[1] <= 100
                for pair in self.logit_bias
            ),
            "logit_bias",
            "expected up to 300 token ids (as strings) mapped to numbers from -100 to 100",
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stop"] = list(self.stop)
        data["stop_token_ids"] = list(self.stop_token_ids)
        data["logit_bias"] = [list(pair) for pair in self.logit_bias]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplingParams:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UnsupportedParameter(unknown[0])
        values = dict(data)
        if isinstance(values.get("stop"), str):
            values["stop"] = (values["stop"],)
        for key in ("stop", "stop_token_ids"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        if isinstance(values.get("logit_bias"), list):
            values["logit_bias"] = tuple(
                tuple(pair) if isinstance(pair, list) else pair for pair in values["logit_bias"]
            )
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message: an assistant's may carry the tool calls it made, a ``tool`` message
    answers one of them (``tool_call_id``)."""

    role: str
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None  # a tool message: the function that answered

    def __post_init__(self) -> None:
        _check(
            self.role in ("system", "user", "assistant", "tool"),
            "messages",
            f"role must be system, user, assistant or tool, got {self.role!r}",
        )
        _check(
            isinstance(self.content, str),
            "messages",
            f"content must be a string, got {type(self.content).__name__}",
        )

    def to_dict(self) -> dict[str, Any]:
        """The message as OpenAI writes it (tool-call arguments as JSON text)."""
        data: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            data["tool_calls"] = [call.to_openai() for call in self.tool_calls]
        if self.tool_call_id is not None:
            data["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            data["name"] = self.name
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        calls = tuple(
            ToolCall(c["id"], c["function"]["name"], c["function"]["arguments"])
            for c in data.get("tool_calls") or ()
        )
        return cls(data["role"], data["content"], calls, data.get("tool_call_id"), data.get("name"))


#: Where a completion's reply ends: ``block`` (a blank line, a dedent or a closing fence),
#: ``line`` (the end of the first line) or ``none`` (only max_tokens and the model's own end).
STOP_AT = ("block", "line", "none")
#: Longest text a completion may carry, per field (prefix, suffix, all context together).
COMPLETION_TEXT_LIMIT = 64_000


@dataclass(frozen=True, slots=True)
class CompletionInput:
    """An editor's inline-completion request: the text around the cursor, not a prompt.

    The pool turns it into the model's prompt (fill-in-the-middle where the model has FIM
    tokens, else an instruction) and trims the reply to what belongs at the cursor.
    ``editor`` names the editor that asked: its next completion cancels this one.
    """

    prefix: str
    suffix: str = ""
    language: str = ""
    context: tuple[str, ...] = ()  # earlier cells or files, oldest first
    editor: str | None = None
    stop_at: str = "block"

    def __post_init__(self) -> None:
        for name in ("prefix", "suffix", "language"):
            value = getattr(self, name)
            _check(isinstance(value, str), name, f"expected a string, got {_kind(value)}")
            _check(
                len(value) <= COMPLETION_TEXT_LIMIT,
                name,
                f"at most {COMPLETION_TEXT_LIMIT} characters, got {len(value)}",
            )
        _check(
            isinstance(self.context, tuple) and all(isinstance(c, str) for c in self.context),
            "context",
            "expected a list of strings (earlier cells)",
        )
        _check(
            sum(len(c) for c in self.context) <= COMPLETION_TEXT_LIMIT,
            "context",
            f"at most {COMPLETION_TEXT_LIMIT} characters in all",
        )
        _check(
            self.editor is None or (isinstance(self.editor, str) and 0 < len(self.editor) <= 200),
            "editor",
            "expected a non-empty string of up to 200 characters",
        )
        _check(
            self.stop_at in STOP_AT,
            "stop_at",
            f"expected one of {', '.join(STOP_AT)}, got {self.stop_at!r}",
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["context"] = list(self.context)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompletionInput:
        values = dict(data)
        if isinstance(values.get("context"), list):
            values["context"] = tuple(values["context"])
        return cls(**values)


def _kind(value: object) -> str:
    return type(value).__name__


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """What a client asks for: a prompt or chat messages, for one model.

    A completion (``completion`` set) comes without either; the pool assembles its prompt
    or messages from the text around the cursor before the job is priced.
    """

    model: str
    prompt: str | None = None
    messages: tuple[Message, ...] | None = None
    params: SamplingParams = field(default_factory=SamplingParams)
    priority: Priority = Priority.NORMAL
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = field(default_factory=ToolChoice)
    response_format: ResponseFormat | None = None
    completion: CompletionInput | None = None

    def __post_init__(self) -> None:
        _check(
            isinstance(self.model, str) and bool(self.model),
            "model",
            f"expected a model name, got {self.model!r}",
        )
        if self.completion is None:
            _check(
                (self.prompt is None) != (self.messages is None),
                "prompt",
                "give exactly one of prompt or messages",
            )
        else:
            _check(
                self.prompt is None or self.messages is None,
                "prompt",
                "a completion has at most one of prompt or messages (its assembled form)",
            )
        if self.prompt is not None:
            _check(
                isinstance(self.prompt, str),
                "prompt",
                f"expected a string, got {type(self.prompt).__name__}",
            )
        if self.messages is not None:
            _check(
                isinstance(self.messages, tuple)
                and len(self.messages) > 0
                and all(isinstance(m, Message) for m in self.messages),
                "messages",
                "expected a non-empty list of {role, content} messages",
            )
        names = [t.name for t in self.tools]
        _check(len(set(names)) == len(names), "tools", "two functions share a name")
        _check(
            self.tool_choice.mode != "function" or self.tool_choice.name in names,
            "tool_choice",
            f"no function named {self.tool_choice.name!r} among the tools",
        )
        _check(
            self.tool_choice.mode != "required" or bool(self.tools),
            "tool_choice",
            "required needs tools",
        )
        _check(
            not self.tools or self.messages is not None,
            "tools",
            "tools need messages (a chat), not a prompt",
        )

    @property
    def output_schema(self) -> str | None:
        """The JSON schema the output is constrained to (structured.py); None: free text."""
        return output_schema(self.tools, self.tool_choice, self.response_format)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": self.model,
            "prompt": self.prompt,
            "messages": None if self.messages is None else [m.to_dict() for m in self.messages],
            "params": self.params.to_dict(),
            "priority": self.priority.value,
            "completion": None if self.completion is None else self.completion.to_dict(),
        }
        if self.tools:
            data["tools"] = [t.to_openai() for t in self.tools]
            data["tool_choice"] = self.tool_choice.to_openai()
        if self.response_format is not None:
            data["response_format"] = self.response_format.to_openai()
        return data

    @property
    def kind(self) -> str:
        """``completion`` for an editor's inline completion, else ``generate``."""
        return "generate" if self.completion is None else "completion"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationRequest:
        messages = data.get("messages")
        tools = tuple(
            Tool(
                t["function"]["name"],
                t["function"].get("description", ""),
                canonical_json(t["function"].get("parameters", {"type": "object"})),
            )
            for t in data.get("tools") or ()
        )
        choice = data.get("tool_choice", "auto")
        fmt = data.get("response_format")
        return cls(
            model=data["model"],
            prompt=data.get("prompt"),
            messages=None if messages is None else tuple(Message.from_dict(m) for m in messages),
            params=SamplingParams.from_dict(data.get("params") or {}),
            priority=Priority.parse(data.get("priority", "normal")),
            tools=tools,
            tool_choice=ToolChoice(choice)
            if isinstance(choice, str)
            else ToolChoice("function", choice["function"]["name"]),
            response_format=None
            if fmt is None
            else ResponseFormat(
                fmt["type"],
                None
                if fmt["type"] != "json_schema"
                else canonical_json(fmt["json_schema"]["schema"]),
                (fmt.get("json_schema") or {}).get("name", "response"),
                bool((fmt.get("json_schema") or {}).get("strict", False)),
            ),
            completion=None
            if data.get("completion") is None
            else CompletionInput.from_dict(data["completion"]),
        )

    def with_params(self, **changes: Any) -> GenerationRequest:
        return replace(self, params=replace(self.params, **changes))


@dataclass(frozen=True, slots=True)
class Logprob:
    """The chosen token's log-probability, with the most likely alternatives when asked."""

    token: str
    token_id: int
    logprob: float
    top: tuple[tuple[str, int, float], ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Logprob:
        return cls(
            token=data["token"],
            token_id=int(data["token_id"]),
            logprob=float(data["logprob"]),
            top=tuple((str(t), int(i), float(lp)) for t, i, lp in data.get("top") or ()),
        )


@dataclass(frozen=True, slots=True)
class TokenEvent:
    """One event of a job's stream; ``index`` counts from 0 and is the SSE event id.

    A job's stream is: one ``running`` event when it starts, token events (``text`` set),
    and one terminal event whose ``status`` is terminal.
    """

    job_id: str
    index: int
    status: JobStatus
    text: str = ""
    token_ids: tuple[int, ...] = ()
    finish_reason: str | None = None
    error: str | None = None
    logprobs: tuple[Logprob, ...] | None = None
    error_type: str | None = None  # the errors.py class a failure stands for (WorkerLost, ...)

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    def failure(self, model: str) -> LLMError | None:
        """The domain error this event ends its job with; None unless it ends a failure."""
        return job_failure(self.job_id, model, self.status, self.error, self.error_type)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.job_id,
            "index": self.index,
            "status": self.status.value,
            "text": self.text,
            "token_ids": list(self.token_ids),
            "finish_reason": self.finish_reason,
            "error": self.error,
            "error_type": self.error_type,
        }
        if self.logprobs is not None:
            data["logprobs"] = [asdict(lp) for lp in self.logprobs]
        return data


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True, slots=True)
class Timings:
    """Wall-clock times (seconds since the epoch); ``None`` until reached."""

    created_at: float
    started_at: float | None = None
    first_token_at: float | None = None
    finished_at: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        data: dict[str, float | None] = asdict(self)
        data["queue_secs"] = _span(self.created_at, self.started_at)
        data["time_to_first_token_secs"] = _span(self.created_at, self.first_token_at)
        data["run_secs"] = _span(self.started_at, self.finished_at)
        return data


def _span(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round(end - start, 6)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as the mailbox keeps it, from acceptance until retention ends."""

    id: str
    model: str
    status: JobStatus
    timings: Timings
    priority: Priority = Priority.NORMAL
    text: str = ""
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
    error_type: str | None = None  # the errors.py class a failure stands for (WorkerLost, ...)
    user: str | None = None  # who submitted it; None: nobody named (an embedded pool, old records)
    kind: str = "generate"  # GenerationRequest.kind

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "user": self.user,
            "status": self.status.value,
            "priority": self.priority.value,
            "kind": self.kind,
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": self.usage.to_dict(),
            "timings": self.timings.to_dict(),
            "error": self.error,
            "error_type": self.error_type,
        }

    def failure(self) -> LLMError | None:
        """The domain error this job's ending stands for; None if it completed or runs."""
        return job_failure(self.id, self.model, self.status, self.error, self.error_type)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobRecord:
        timings = data["timings"]
        usage = data.get("usage") or {}
        return cls(
            id=data["id"],
            model=data["model"],
            status=JobStatus(data["status"]),
            priority=Priority(data.get("priority", "normal")),
            kind=data.get("kind", "generate"),
            text=data.get("text", ""),
            finish_reason=data.get("finish_reason"),
            usage=Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)),
            timings=Timings(
                created_at=timings["created_at"],
                started_at=timings.get("started_at"),
                first_token_at=timings.get("first_token_at"),
                finished_at=timings.get("finished_at"),
            ),
            error=data.get("error"),
            error_type=data.get("error_type"),
            user=data.get("user"),
        )
