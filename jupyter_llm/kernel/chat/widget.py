"""``ChatWidget``: a chat in the notebook that follows jobs in the pool.

The widget is an anywidget (ipywidgets 8 underneath) whose view, ``widget.js``, ships in
this package: nothing comes from a CDN. anywidget rather than ipywidgets' own controls
because a ``Textarea`` there cannot tell Enter from Shift+Enter, and Enter-to-send is what
chat users expect.

Threads. Clicks and Python calls (``send``, ``stop``...) run on the kernel's main thread;
a job's tokens arrive on the kernel's background loop (``loop.py``), where ``LiveAnswer``
repaints the answer, paced as ``%%llm`` is. The kernel only relays tokens, so an answer
keeps streaming while other cells run; a click waits until the kernel is idle, except
Stop, which the browser also sends straight to the server when the kernel talks to the
server that serves the page. Every change of the synced state happens under one lock.

What the view is sent: ``transcript`` (every block, redrawn by id and version when a
block is added or an answer ends) and ``live`` (only the answer that is streaming).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ...errors import InvalidRequest, LLMError, QueueFull, UnknownModel
from ...types import JobStatus, SamplingParams
from ..client import Client
from ..errors import explain
from ..generation import Generation
from ..interpolate import interpolate
from ..remote import RemoteBackend
from .conversation import Conversation, Entry
from .live import LiveAnswer, answer_meta
from .markdown import pygments_css, render_markdown

__all__ = ["ChatWidget"]

HERE = Path(__file__).parent
MODELS_POLL = 1.0  # seconds between model lists while a model is loading


class ChatWidget(anywidget.AnyWidget):
    """A chat with a model of the pool: ``ChatWidget(model=None, system=None, **params)``.

    ``params`` are sampling parameters for every answer (``temperature``, ``max_tokens``,
    ``top_p``, ``seed``...); ``schema=`` (a JSON schema) makes every answer a JSON document
    that fits it (``Client.generate``). ``chat.send(text)`` returns the answer's ``Generation``;
    ``chat.messages`` is the conversation in OpenAI's format.
    """

    _esm = HERE / "widget.js"
    _css = (HERE / "widget.css").read_text() + pygments_css(".jllm-chat .jllm-body")

    # settings: the view edits them, Python may too
    model = traitlets.Unicode("").tag(sync=True)
    system = traitlets.Unicode("").tag(sync=True)
    temperature = traitlets.Float(None, allow_none=True).tag(sync=True)
    max_tokens = traitlets.Int(None, allow_none=True).tag(sync=True)
    interpolate = traitlets.Bool(False).tag(sync=True)
    # state the kernel shows
    models = traitlets.List(traitlets.Dict()).tag(sync=True)
    transcript = traitlets.List(traitlets.Dict()).tag(sync=True)
    live = traitlets.Dict().tag(sync=True)
    busy = traitlets.Bool(False).tag(sync=True)
    server_url = traitlets.Unicode("").tag(sync=True)  # where the kernel's jobs run
    job_id = traitlets.Unicode("").tag(sync=True)  # the streaming answer's job

    def __init__(
        self,
        model: str | None = None,
        system: str | None = None,
        *,
        client: Client | None = None,
        interpolate: bool = False,
        schema: dict[str, Any] | None = None,
        **params: Any,
    ) -> None:
        temperature = params.pop("temperature", None)
        max_tokens = params.pop("max_tokens", None)
        SamplingParams.from_dict({**params, "temperature": temperature, "max_tokens": max_tokens})
        super().__init__(
            model=model or "",
            system=system or "",
            temperature=temperature,
            max_tokens=max_tokens,
            interpolate=interpolate,
        )
        self.params = params
        self.schema = schema
        self.client = client or Client.default()
        self.conversation = Conversation(system)
        self._lock = threading.RLock()
        self._current: tuple[Entry, Generation] | None = None
        self._dropped = 0  # oldest turns left out of the last request
        self._closed = False
        backend = self.client.backend
        if isinstance(backend, RemoteBackend):
            self.server_url = backend.url
        self.on_msg(self._on_view_message)
        self._refresh_models()

    # -- the Python API --------------------------------------------------------------------

    @property
    def messages(self) -> list[dict[str, str]]:
        """The conversation in OpenAI's format, system prompt first."""
        with self._lock:
            return self.conversation.messages()

    @traitlets.observe("system")
    def _system_changed(self, change: dict[str, Any]) -> None:
        if hasattr(self, "conversation"):
            self.conversation.system = change["new"] or None

    @property
    def generation(self) -> Generation | None:
        """The answer streaming now, if any."""
        current = self._current
        return None if current is None else current[1]

    def send(self, text: str) -> Generation:
        """Ask ``text`` and return the answer's ``Generation`` (streaming already).

        Raises the domain error (``QueueFull``, ``UnknownModel``...) when the job is
        refused; the transcript shows it too."""
        if not text.strip():
            raise ValueError("nothing to send: the message is empty")
        if self.interpolate:
            text = interpolate(text, _user_namespace())
        with self._lock:
            self._check_idle()
            self.conversation.add("user", text.strip())
            self._sync()
        return self._answer()

    def stop(self) -> None:
        """Cancel the answer in flight (queued or running) and wait until it has stopped."""
        generation = self.generation
        if generation is not None:
            generation.cancel()

    def regenerate(self) -> Generation:
        """Answer the last message again (its previous answer is dropped)."""
        with self._lock:
            self._check_idle()
            self.conversation.remove_after_last_question()
            self._sync()
        return self._answer()

    def edit(self, text: str) -> Generation:
        """Replace the last message with ``text`` and answer it again."""
        if not text.strip():
            raise ValueError("nothing to send: the message is empty")
        with self._lock:
            self._check_idle()
            question = self.conversation.remove_after_last_question()
            question.text = text.strip()
            question.touch()
            self._dropped = 0
            self._sync()
        return self._answer()

    def clear(self) -> None:
        """A new chat: stop the answer in flight, forget every message (settings stay)."""
        self.stop()
        with self._lock:
            self.conversation.clear()
            self._dropped = 0
            self._sync()

    def to_markdown(self) -> str:
        with self._lock:
            return self.conversation.to_markdown()

    def save(self, path: str | Path) -> Path:
        """Write the chat (messages, answers with their numbers, settings) as JSON."""
        import json

        with self._lock:
            data = self.conversation.to_dict(self._settings())
        target = Path(path)
        target.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", "utf-8")
        return target

    @classmethod
    def load(cls, path: str | Path, *, client: Client | None = None) -> ChatWidget:
        """A chat saved by ``save``, ready to go on."""
        conversation, settings = Conversation.from_file(path)
        chat = cls(
            settings.get("model") or None,
            conversation.system,
            client=client,
            interpolate=bool(settings.get("interpolate", False)),
            temperature=settings.get("temperature"),
            max_tokens=settings.get("max_tokens"),
            schema=settings.get("schema"),
            **dict(settings.get("params") or {}),
        )
        with chat._lock:
            chat.conversation.entries = conversation.entries
            chat._sync()
        return chat

    def close(self) -> None:
        self._closed = True
        super().close()

    # -- asking ----------------------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        settings = {
            "model": self.model or None,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "interpolate": self.interpolate,
            "params": dict(self.params),
        }
        if self.schema is not None:
            settings["schema"] = self.schema
        return settings

    def _check_idle(self) -> None:
        if self._current is not None and self._current[1].done:
            # Ended, but its follower on the background loop has not settled it yet: a
            # ``send(...).wait()`` then ``send(...)`` in code must not find the chat busy.
            self._finish(self._current[1])
        if self._current is not None:
            raise RuntimeError("an answer is still streaming: stop it first (chat.stop())")

    def _answer(self) -> Generation:
        """Submit the chat for an answer, leaving out the oldest turns that no longer fit."""
        params = dict(self.params)
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        with self._lock:
            turns = len(self.conversation.turns())
            dropped = min(self._dropped, turns - 1)
        try:
            SamplingParams.from_dict(params)  # a bad setting is not a context overflow
            while True:
                request = self.conversation.request(dropped)
                try:
                    generation = self.client.generate(
                        messages=request, model=self.model or None, schema=self.schema, **params
                    )
                    break
                except InvalidRequest as exc:
                    # Too long: the prompt alone (param messages) or with its answer's room.
                    overflow = exc.param == "max_tokens" or (
                        exc.param == "messages" and "exceeds the context" in str(exc)
                    )
                    if not overflow or dropped >= turns - 1:
                        raise
                    dropped += 1
        except LLMError as exc:
            self._show_error(exc)
            raise
        with self._lock:
            if dropped > self._dropped:
                left_out = "oldest turn is" if dropped == 1 else f"{dropped} oldest turns are"
                self.conversation.add(
                    "note",
                    f"the chat is longer than {generation.model}'s context: its {left_out} "
                    "left out of what the model sees (the system prompt stays)",
                )
            self._dropped = dropped
            entry = self.conversation.add(
                "assistant", "", status="queued", model=generation.model, job_id=generation.id
            )
            self._current = (entry, generation)
            self._sync()
            self.job_id = generation.id
            self.busy = True
        LiveAnswer(generation, self.client.loop.loop, self._paint_live, self._finish).start()
        return generation

    def _show_error(self, error: BaseException) -> None:
        with self._lock:
            self.conversation.add("error", chat_explain(error))
            self._sync()

    # -- on the background loop ------------------------------------------------------------

    def _paint_live(self, generation: Generation) -> int:
        html = render_markdown(generation.text, final=False)
        meta = answer_meta(generation)
        with self._lock:
            if self._current is None or self._current[1] is not generation:
                return 0
            status = generation.status.value
            self.live = {"id": self._current[0].id, "html": html, "meta": meta, "status": status}
        return len(html.encode()) + len(meta.encode())

    def _finish(self, generation: Generation) -> None:
        with self._lock:
            if self._current is None or self._current[1] is not generation:
                return
            entry = self._current[0]
            self._current = None
            entry.text = generation.text
            entry.status = generation.status.value
            entry.meta = answer_meta(generation)
            entry.touch()
            failure = generation.failure
            cancelled = generation.status is JobStatus.CANCELLED
            if failure is not None and not cancelled and not entry.text:
                entry.role, entry.text, entry.meta = "error", chat_explain(failure), ""
            self.live = {}  # first: a view must not paint the last live state over the end
            self._sync()
            self.job_id = ""
            self.busy = False

    def _refresh_models(self) -> None:
        if not self._closed:
            self.client.loop.spawn(self._fetch_models())

    async def _fetch_models(self) -> None:
        try:
            models = await self.client.backend.models()
        except LLMError as exc:
            self._show_error(exc)
            return
        rows = [
            {
                "name": str(m.get("name")),
                "state": str(m.get("state")),
                "label": _model_label(m),
            }
            for m in models
        ]
        with self._lock:
            self.models = rows
            if not self.model:
                usable = [r for r in rows if r["state"] != "error"] or rows
                if usable:
                    self.model = usable[0]["name"]
        if any(r["state"] == "loading" for r in rows) and not self._closed:
            await asyncio.sleep(MODELS_POLL)
            self._refresh_models()

    # -- the view --------------------------------------------------------------------------

    def _sync(self) -> None:
        """Send the transcript (under the lock): each block with its id and version."""
        self.transcript = [_block(entry) for entry in self.conversation.entries]

    def set_state(self, sync_data: dict[str, Any]) -> None:
        # The view's edits land on the main thread; the loop thread paints: one at a time.
        with self._lock:
            super().set_state(sync_data)

    def _on_view_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        action = content.get("action") if isinstance(content, dict) else None
        try:
            if action == "send":
                self.send(str(content.get("text", "")))
            elif action == "edit":
                self.edit(str(content.get("text", "")))
            elif action == "stop":
                self.stop()
            elif action == "regenerate":
                self.regenerate()
            elif action == "new":
                self.clear()
            elif action == "refresh":
                self._refresh_models()
        except LLMError:
            pass  # the transcript shows it already
        except (ValueError, RuntimeError, TimeoutError) as exc:
            self._show_error(exc)


def chat_explain(error: BaseException) -> str:
    """One line a chat user can act on."""
    if isinstance(error, UnknownModel):
        return f"{error}; choose another model in the list above"
    if isinstance(error, QueueFull):
        return f"{error}; then press Regenerate"
    if isinstance(error, LLMError):
        return explain(error)
    return str(error)


def _block(entry: Entry) -> dict[str, Any]:
    block: dict[str, Any] = {
        "id": entry.id,
        "version": entry.version,
        "role": entry.role,
        "text": entry.text,
    }
    if entry.role == "assistant":  # the view shows its HTML; the text stays here
        del block["text"]
        block.update(html=render_markdown(entry.text), meta=entry.meta, status=entry.status)
    return block


def _model_label(model: dict[str, Any]) -> str:
    name, state = str(model.get("name")), str(model.get("state"))
    if state == "ready":
        return name
    if state == "error":
        return f"{name} (error: {model.get('error') or 'failed to load'})"
    return f"{name} ({state})"


def _user_namespace() -> dict[str, Any]:
    try:
        from IPython.core.getipython import get_ipython
    except ImportError:
        return {}
    shell = get_ipython()  # type: ignore[no-untyped-call, unused-ignore]  # typed from IPython 9
    return dict(shell.user_ns) if shell is not None else {}
