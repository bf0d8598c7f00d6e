"""The extension app: builds the pool, starts it with the server, drains it on shutdown.

Lifecycle (STYLE.md, rule 6): ``initialize_settings`` reads models.yaml and builds the pool
(nothing starts); ``_start_jupyter_server_extension`` starts it once the server's loop runs
(models load in the background, so the server answers at once); ``stop_extension`` drains
it and stops every worker process before the server exits.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Float, Int, Set, Unicode
from traitlets.config import Application

from ..config import load_config, resolve_config_path
from ..errors import ConfigError
from ..pool import Pool
from .api_handlers import api_handlers
from .base import STATE_KEY, LLMState
from .collector import IdleCollector
from .metrics import PrometheusObserver, forget_pool, watch_pool
from .openai_handlers import openai_handlers
from .owners import AdminPolicy, admins, everyone

__all__ = ["LLMExtension"]


class LLMExtension(ExtensionApp):
    """Local LLM inference for Jupyter: the worker pool and its HTTP routes."""

    name = "jupyter_llm"

    config_file = Unicode(
        "",
        config=True,
        help="""Path of the models.yaml to load. Empty: the environment variable
        JUPYTER_LLM_CONFIG, else models.yaml in the server's root directory, else the
        configuration packaged with jupyter_llm.""",
    )

    keepalive_secs = Float(
        10.0,
        config=True,
        help="""Seconds of silence after which an event stream sends a keep-alive comment
        (while a job waits in the queue, say), so proxies do not close it.""",
    )

    drain_secs = Float(
        5.0,
        config=True,
        help="""Seconds that running jobs get to finish when the server stops; the rest are
        cancelled, then every worker process is stopped.""",
    )

    max_body_bytes = Int(
        4 * 1024 * 1024,
        min=0,
        config=True,
        help="""Largest request body, in bytes, that a jupyter_llm route reads; a larger one
        is refused with 413 (on its Content-Length, before it is read). 0: no cap but the
        server's own ServerApp.max_body_size. The default holds a prompt of about a
        million tokens.""",
    )

    freeze_gc = Bool(
        True,
        config=True,
        help="""Once the server has started, move the objects it holds then out of the garbage
        collector's reach (gc.freeze), and run full collections only while the pool is idle
        (server/collector.py). A full collection walks every object, and a Jupyter server
        holds some 200,000 after start-up: walking them stalls its loop, and every token
        stream with it, for tens of milliseconds.""",
    )

    private_jobs = Bool(
        False,
        config=True,
        help="""Whether each user lists, reads, streams and cancels only their own jobs
        (another user's job id answers 404, as an unknown one does). Off: every request
        sees every job, as suits a single-user server, where jupyter-server's default
        identity provider names each token-authenticated client anew (a random anonymous
        user), so owners would not match between one kernel's requests. Turn it on behind
        an identity provider that names users stably, such as JupyterHub's. Jobs record
        their user and per-user limits apply either way.""",
    )

    job_admins = Set(
        Unicode(),
        config=True,
        help="""With private_jobs: the usernames that see and cancel every user's jobs.""",
    )

    pool: Pool | None = None
    collector: IdleCollector | None = None
    created: float = 0.0  # when the models were configured (OpenAI's "created" of a model)
    #: Why there is no pool: the configuration could not be loaded (reported by every route).
    config_error: ConfigError | None = None

    def load_config_file(self, suppress_errors: bool = True) -> None:  # type: ignore[override]
        # JupyterApp reads ``config_file`` as a traitlets config file; here the trait names
        # models.yaml (the name docs/interfaces.md gives it), so read only the usual config files.
        for name in ("jupyter_config", self.config_file_name):
            Application.load_config_file(self, name, path=self.config_file_paths)

    def config_path(self) -> Path:
        """The models.yaml in force: the trait, the environment, the root dir, the default."""
        root_dir = self.serverapp.root_dir if self.serverapp is not None else None
        return resolve_config_path(self.config_file or None, root_dir=root_dir)

    def initialize_settings(self) -> None:
        try:
            path = self.config_path()
            config = load_config(path)
        except ConfigError as exc:
            self.log.error("jupyter_llm: no models are served: %s", exc)
            self.config_error = exc
        else:
            self.log.info("jupyter_llm: models from %s: %s", path, ", ".join(config.names))
            self._share_log()
            self.created = time.time()
            self.pool = Pool(config, observer=PrometheusObserver(), drain_secs=self.drain_secs)
        state = LLMState(
            self.pool,
            self.config_error,
            self.created,
            self.keepalive_secs,
            admin=self.admin_policy(),
            max_body_bytes=self.max_body_bytes,
        )
        self.settings[STATE_KEY] = state

    def admin_policy(self) -> AdminPolicy:
        """Who sees every job, from ``private_jobs`` and ``job_admins``."""
        return admins(self.job_admins) if self.private_jobs else everyone

    def _share_log(self) -> None:
        """Send the pool's log lines (each model's workers starting, loading, ready or
        failed) to the server's log, with its handlers and level."""
        ours = logging.getLogger("jupyter_llm")
        server_log = self.serverapp.log if self.serverapp is not None else self.log
        if isinstance(server_log, logging.LoggerAdapter):
            server_log = server_log.logger
        if ours.handlers or not isinstance(server_log, logging.Logger):
            return  # configured already (by the user, or by an earlier server in this process)
        for handler in server_log.handlers:
            ours.addHandler(handler)
        if ours.level == logging.NOTSET:
            ours.setLevel(server_log.getEffectiveLevel())

    def initialize_handlers(self) -> None:
        self.handlers.extend([*api_handlers, *openai_handlers])

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        if self.pool is None:
            return
        await self.pool.start()
        watch_pool(self.pool)
        if self.freeze_gc:
            pool = self.pool
            self.collector = IdleCollector(lambda: not pool.busy)
            self.collector.start()

    async def stop_extension(self) -> None:
        if self.collector is not None:
            self.collector.stop()
            self.collector = None
        if self.pool is not None:
            forget_pool(self.pool)
            await self.pool.stop()

    def current_activity(self) -> list[str] | None:
        """What keeps the server busy (for idle culling): jobs running or waiting."""
        if self.pool is None or not self.pool.busy:
            return None
        total = self.pool.stats().total
        return [f"jupyter_llm: {total.running} jobs running, {total.queued} waiting"]
