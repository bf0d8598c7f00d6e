"""The notebook's client: one object in front of a server or an embedded pool.

Every call is synchronous for the caller and runs on the kernel's background loop, where
the backend lives (``loop.py``). ``generate`` returns as soon as the job is accepted: a
``Generation`` that fills in as tokens arrive, while the caller's thread is free.

``Client.default()`` is the kernel's client, found once by ``discovery.discover``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import InvalidRequest, LLMError
from ..structured import ResponseFormat, canonical_json
from ..types import GenerationRequest, JobRecord, Message, Priority, SamplingParams
from .backend import Backend
from .discovery import Target, discover
from .embedded import EmbeddedBackend
from .follower import follow
from .generation import Generation
from .loop import BackgroundLoop, shared_loop
from .remote import RemoteBackend

__all__ = ["Client"]

CALL_TIMEOUT = 30.0  # seconds for one request (a submit waits while the server counts tokens)

_default: Client | None = None
_default_lock = threading.Lock()


class Client:
    """Submit, follow, list and cancel jobs from a notebook.

    >>> client = Client.default()
    >>> g = client.generate("Name three primes.", max_tokens=32)
    >>> g.wait()
    """

    def __init__(
        self, backend: Backend, *, loop: BackgroundLoop | None = None, why: str = ""
    ) -> None:
        self.backend = backend
        self.why = why  # how this backend was chosen (for %llm status)
        self._loop = loop or shared_loop()
        self._loop.on_close(backend.close)
        self._live: dict[str, Generation] = {}

    # -- making one ------------------------------------------------------------------------

    @classmethod
    def default(cls) -> Client:
        """The kernel's client: found on first use (``discovery.py``), then kept."""
        global _default
        with _default_lock:
            if _default is None:
                _default = cls.for_target(discover())
            return _default

    @classmethod
    def existing(cls) -> Client | None:
        """The kernel's client if it has been made, without making it."""
        return _default

    @classmethod
    def for_target(cls, target: Target, loop: BackgroundLoop | None = None) -> Client:
        backend: Backend
        if target.kind == "embedded":
            assert target.config_path is not None
            backend = EmbeddedBackend(target.config_path)
            return cls(backend, loop=loop, why=target.why)
        assert target.url is not None
        hint = (
            "is that server running? (JUPYTER_LLM_URL points at it)"
            if target.kind == "env"
            else "has the Jupyter server hosting this kernel stopped?"
        )
        backend = RemoteBackend(
            target.url,
            target.token,
            where=f"the jupyter_llm server at {target.url}",
            hint=hint,
            socket=target.socket,
        )
        return cls(backend, loop=loop, why=target.why)

    @classmethod
    def connect(cls, url: str, token: str | None = None) -> Client:
        """A client for the jupyter_llm server at ``url`` (its base URL)."""
        return cls.for_target(Target("env", "connected by hand", url=url, token=token))

    @classmethod
    def embedded(cls, config_path: str | Path) -> Client:
        """A client with its own pool in this process, from ``config_path``."""
        return cls.for_target(Target("embedded", "made by hand", config_path=Path(config_path)))

    @property
    def loop(self) -> BackgroundLoop:
        """The background loop that runs this client's backend and follows its jobs."""
        return self._loop

    @property
    def is_embedded(self) -> bool:
        return isinstance(self.backend, EmbeddedBackend)

    @property
    def where(self) -> str:
        return self.backend.where

    # -- reports ---------------------------------------------------------------------------

    def models(self) -> list[dict[str, Any]]:
        """The models with their state, as ``GET llm/api/models`` lists them."""
        return self._loop.run(self.backend.models(), CALL_TIMEOUT)

    def status(self) -> dict[str, Any]:
        return self._loop.run(self.backend.status(), CALL_TIMEOUT)

    def jobs(self, limit: int = 50) -> list[JobRecord]:
        """Recent jobs, newest first (from everyone who uses these models)."""
        return self._loop.run(self.backend.jobs(limit), CALL_TIMEOUT)

    def get(self, job_id: str) -> JobRecord:
        return self._loop.run(self.backend.get(job_id), CALL_TIMEOUT)

    def default_model(self) -> str:
        """The first model configured that has not failed (ready, or still loading: a job
        waits for it); the same one whatever the timing."""
        models = self.models()
        if not models:
            raise LLMError(f"{self.where} has no models configured")
        usable = [m for m in models if m.get("state") != "error"]
        return str((usable or models)[0]["name"])

    # -- jobs ------------------------------------------------------------------------------

    def generate(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Message | dict[str, str]] | None = None,
        model: str | None = None,
        system: str | None = None,
        priority: str = "normal",
        schema: dict[str, Any] | None = None,
        **params: Any,
    ) -> Generation:
        """Start a job and return its ``Generation`` at once.

        ``prompt`` is sent as the user's chat message (with ``system`` before it); a model
        without a chat template gets it as a plain prompt. ``messages`` gives the whole chat
        instead. ``params`` are sampling parameters (``max_tokens``, ``temperature``...).
        ``schema``, a JSON schema, constrains the answer to a document that validates against
        it (``{}`` or ``{"type": "object"}``: any JSON object).
        """
        name = model or self.default_model()
        response_format = None if schema is None else _response_format(schema)
        sampling = SamplingParams.from_dict(params)
        chat: tuple[Message, ...] | None
        if messages is not None:
            chat = tuple(
                m if isinstance(m, Message) else Message.from_dict(dict(m)) for m in messages
            )
        elif prompt is not None:
            chat = (Message("user", prompt),)
            if system is not None:
                chat = (Message("system", system), *chat)
        else:
            raise InvalidRequest("give a prompt or messages", "prompt")
        request = GenerationRequest(
            name,
            messages=chat,
            params=sampling,
            priority=Priority.parse(priority),
            response_format=response_format,
        )
        try:
            return self.submit(request)
        except InvalidRequest as exc:
            if exc.param != "messages" or messages is not None or system is not None:
                raise
        # No chat template: the cell's text is the whole prompt.
        return self.submit(
            GenerationRequest(
                name,
                prompt=prompt,
                params=sampling,
                priority=request.priority,
                response_format=response_format,
            )
        )

    def submit(self, request: GenerationRequest) -> Generation:
        """Submit ``request`` and follow its stream in the background."""
        record = self._loop.run(self.backend.submit(request), CALL_TIMEOUT)
        generation = Generation(record, request, self.cancel, self._post)
        self._live[generation.id] = generation
        generation.subscribe(self._forget_when_done)
        self._loop.spawn(follow(generation, self.backend))
        return generation

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a job (queued or running); a finished one is left as it is."""
        return self._loop.run(self.backend.cancel(job_id), CALL_TIMEOUT)

    def cancel_all(self) -> list[Generation]:
        """Cancel every unfinished job this client started; returns their generations."""
        live = [g for g in list(self._live.values()) if not g.done]
        for generation in live:
            generation.cancel()
        return live

    @property
    def live(self) -> list[Generation]:
        """The unfinished jobs this client started."""
        return [g for g in list(self._live.values()) if not g.done]

    def close(self) -> None:
        self._loop.run(self.backend.close(), CALL_TIMEOUT)

    # -- internals -------------------------------------------------------------------------

    def _post(self, callback: Callable[[], None]) -> None:
        self._loop.call_soon(callback)

    def _forget_when_done(self, generation: Generation) -> None:
        if generation.done:
            self._live.pop(generation.id, None)


def _response_format(schema: dict[str, Any]) -> ResponseFormat:
    if not isinstance(schema, dict):
        raise InvalidRequest("schema: expected a JSON schema (a dict)", "schema")
    if not schema or schema == {"type": "object"}:
        return ResponseFormat("json_object")
    return ResponseFormat("json_schema", canonical_json(schema), "schema", True)
