"""The durable mailbox: one SQLite file, written behind the event loop's back.

``put`` and ``sweep`` only change a dict of "hot" entries (not yet committed) and wake a
writer thread, which commits everything pending in one transaction: a burst of puts costs
one commit, and the loop never waits on the disk. Reads merge the hot entries over the rows
on disk, so callers see their own writes at once; the disk part runs in an executor.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import contextlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ...errors import ConfigError, LLMError
from ...types import GenerationRequest, JobRecord, JobStatus
from .base import Mailbox, is_expired, matches

__all__ = ["SqliteMailbox"]

log = logging.getLogger("jupyter_llm.mailbox")
_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, model TEXT NOT NULL, status TEXT NOT NULL,
    created_at REAL NOT NULL, finished_at REAL, seq INTEGER NOT NULL,
    record TEXT NOT NULL, request TEXT, user TEXT
);
CREATE INDEX IF NOT EXISTS jobs_created_at ON jobs (created_at);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
"""
# Files written before jobs had owners lack the user column: it is added (NULL: nobody named,
# as their records say), then indexed.
_COLUMNS_V1 = {"id", "model", "status", "created_at", "finished_at", "seq", "record", "request"}
_COLUMNS = _COLUMNS_V1 | {"user"}
_MIGRATE_V1 = "ALTER TABLE jobs ADD COLUMN user TEXT"
_USER_INDEX = "CREATE INDEX IF NOT EXISTS jobs_user ON jobs (user)"
_UPSERT = """
INSERT INTO jobs (id, model, status, created_at, finished_at, seq, record, request, user)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET model = excluded.model, status = excluded.status,
    created_at = excluded.created_at, finished_at = excluded.finished_at, seq = excluded.seq,
    record = excluded.record, request = COALESCE(excluded.request, jobs.request),
    user = excluded.user
"""
_UNFINISHED = "('queued', 'running')"
_EXPIRED = f"(status NOT IN {_UNFINISHED} AND COALESCE(finished_at, created_at) < ?)"
_LIST = f"""
SELECT id, seq, record FROM jobs
WHERE (?1 IS NULL OR model = ?1) AND (?2 IS NULL OR status = ?2) AND (?5 IS NULL OR user = ?5)
    AND (?6 IS NULL OR coalesce(json_extract(record, '$.kind'), 'generate') = ?6)
    AND NOT (?3 IS NOT NULL AND {_EXPIRED.replace("?", "?3")})
ORDER BY created_at DESC, seq DESC LIMIT ?4
"""
_REQUEST = f"""
SELECT request FROM jobs WHERE id = ?1 AND NOT (?2 IS NOT NULL AND {_EXPIRED.replace("?", "?2")})
"""


@dataclass(frozen=True, slots=True)
class _Entry:
    """A put or a sweep not yet committed; ``record`` None hides a swept record's row."""

    record: JobRecord | None
    request: GenerationRequest | None  # None: keep the stored one
    seq: int
    fresh: bool = False  # put after its job was swept: the job's older row holds no request


@dataclass(frozen=True, slots=True)
class _Sweep:
    before: float
    ids: tuple[str, ...]  # hot records it dropped: their older rows may be on disk


def _create_private(path: Path) -> None:
    """Create the file readable and writable by its owner only (prompts and answers are
    private); an existing file of ours loses any group or other access. SQLite gives its
    -wal and -shm files the database file's mode."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_uid == os.getuid() and os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _connect(path: Path) -> sqlite3.Connection:
    # Not checking the thread is safe: a connection serves one thread at a time (the
    # writer's is handed over at thread start, readers' through the idle list).
    return sqlite3.connect(path, timeout=10.0, check_same_thread=False)


class SqliteMailbox(Mailbox):
    """Records in a SQLite file (WAL); a writer thread commits puts in batches."""

    def __init__(
        self, path: str | Path, executor: concurrent.futures.Executor | None = None
    ) -> None:
        self.path = Path(path).expanduser()
        self._executor = executor
        writer = self._open()
        self._seq: int = writer.execute("SELECT COALESCE(MAX(seq), 0) FROM jobs").fetchone()[0]
        self._cond = threading.Condition()  # guards everything below
        self._hot: dict[str, _Entry] = {}
        self._ops: list[_Sweep | asyncio.Future[None]] = []  # sweeps, flushes
        self._dirty = False  # a put since the writer last looked
        self._stopping = False
        self._floor: float | None = None  # highest cutoff of sweeps not yet committed
        self._sweeps_pending = 0
        self._idle: list[sqlite3.Connection] = []
        # A daemon: a mailbox that was never closed must not hang the interpreter's exit.
        self._thread = threading.Thread(
            target=self._run_writer,
            args=(writer,),
            name="jupyter_llm-mailbox-writer",
            daemon=True,
        )
        self._thread.start()

    def _open(self) -> sqlite3.Connection:
        def fail(problem: str) -> ConfigError:
            return ConfigError(str(self.path), "parking_lot.mailbox.path", problem)

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise fail(f"cannot create its folder ({exc})") from exc
        try:
            _create_private(self.path)
        except OSError as exc:
            raise fail(f"cannot create it ({exc})") from exc
        conn = None
        try:
            conn = _connect(self.path)
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a crash of this process; only power loss may
            # cost the last commits, a fair price for not syncing every batch.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
            if columns == _COLUMNS_V1:
                with conn:
                    conn.execute(_MIGRATE_V1)
                columns |= {"user"}
            if columns == _COLUMNS:
                conn.execute(_USER_INDEX)
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise fail(
                f"cannot open it as a SQLite database ({exc}); move the file aside or "
                "point parking_lot.mailbox.path elsewhere"
            ) from exc
        if columns != _COLUMNS:
            conn.close()
            raise fail(f"its jobs table is not a jupyter_llm mailbox (columns {sorted(columns)})")
        return conn

    # -- writes: the loop only touches memory ---------------------------------------------

    def put(self, record: JobRecord, request: GenerationRequest | None = None) -> None:
        with self._cond:
            self._check_open()
            old = self._hot.get(record.id)
            if request is None and old is not None:
                request = old.request
            fresh = old is not None and (old.record is None or old.fresh)
            self._seq += 1
            self._hot[record.id] = _Entry(record, request, self._seq, fresh)
            if not self._dirty:  # the writer was told already otherwise
                self._dirty = True
                self._cond.notify()

    def sweep(self, before: float) -> None:
        with self._cond:
            self._check_open()
            gone = tuple(
                i
                for i, e in self._hot.items()
                if e.record is not None and is_expired(e.record, before)
            )
            for job_id in gone:
                self._seq += 1
                self._hot[job_id] = _Entry(None, None, self._seq)
            self._ops.append(_Sweep(before, gone))
            self._floor = before if self._floor is None else max(self._floor, before)
            self._sweeps_pending += 1
            self._cond.notify()

    async def flush(self) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        with self._cond:
            stopping = self._stopping
            if not stopping:
                self._ops.append(done)
                self._cond.notify()
        if stopping:  # the writer takes no new work but finishes what it has
            await self._join()
        else:
            await done

    async def close(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        await self._join()
        with self._cond:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    async def _join(self) -> None:
        if self._thread.is_alive():
            await asyncio.get_running_loop().run_in_executor(self._executor, self._thread.join)

    def _check_open(self) -> None:
        if self._stopping:
            raise RuntimeError(f"the job mailbox {self.path} is closed")

    @property
    def durable(self) -> bool:
        return True

    # -- reads: hot entries over rows on disk ---------------------------------------------

    async def get(self, job_id: str) -> JobRecord | None:
        with self._cond:
            entry, floor = self._hot.get(job_id), self._floor
        if entry is not None:
            return entry.record
        sql = "SELECT record FROM jobs WHERE id = ?"
        row = await self._read(lambda c: c.execute(sql, (job_id,)).fetchone())
        record = None if row is None else _load_record(row[0])
        if record is not None and floor is not None and is_expired(record, floor):
            return None  # its sweep is not committed yet
        return record

    async def list(
        self,
        limit: int = 50,
        *,
        model: str | None = None,
        status: JobStatus | None = None,
        owner: str | None = None,
        kind: str | None = None,
    ) -> builtins.list[JobRecord]:
        if limit <= 0:
            return []
        with self._cond:
            hot, floor = dict(self._hot), self._floor
        # Hot entries replace up to len(hot) of these rows: fetch that many more.
        wanted = None if status is None else status.value
        args = (model, wanted, floor, limit + len(hot), owner, kind)
        rows = await self._read(lambda c: c.execute(_LIST, args).fetchall())
        found = [
            (e.seq, e.record)
            for e in hot.values()
            if e.record is not None and matches(e.record, model, status, owner, kind)
        ]
        found += [(seq, _load_record(text)) for job_id, seq, text in rows if job_id not in hot]
        found.sort(key=lambda f: (f[1].timings.created_at, f[0]), reverse=True)
        return [record for _, record in found[:limit]]

    async def unfinished(self) -> builtins.list[tuple[JobRecord, GenerationRequest | None]]:
        with self._cond:
            hot, floor = dict(self._hot), self._floor
        live = {i: e for i, e in hot.items() if e.record and not e.record.status.terminal}

        def query(conn: sqlite3.Connection) -> tuple[Any, dict[str, str | None]]:
            sql = f"SELECT id, seq, record, request FROM jobs WHERE status IN {_UNFINISHED}"
            rows = conn.execute(sql).fetchall()
            stored = {row[0]: row[3] for row in rows}
            # A hot put without a request keeps the one in the job's older row, if any.
            for job_id in live.keys() - stored.keys():
                row = conn.execute(_REQUEST, (job_id, floor)).fetchone()
                stored[job_id] = None if row is None else row[0]
            return rows, stored

        rows, stored = await self._read(query)
        found = [
            (e.seq, e.record, e.request or (None if e.fresh else _load_request(stored[job_id])))
            for job_id, e in live.items()
            if e.record is not None
        ]
        found += [
            (seq, _load_record(text), _load_request(request))
            for job_id, seq, text, request in rows
            if job_id not in hot
        ]
        found.sort(key=lambda f: (f[1].timings.created_at, f[0]))
        return [(record, request) for _, record, request in found]

    async def _read(self, query: Callable[[sqlite3.Connection], _T]) -> _T:
        self._check_open()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._with_reader, query)

    def _with_reader(self, query: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._cond:
            conn = self._idle.pop() if self._idle else None
        conn = conn or _connect(self.path)
        try:
            return query(conn)
        finally:
            with self._cond:
                if self._stopping:
                    conn.close()
                else:
                    self._idle.append(conn)

    # -- the writer thread ----------------------------------------------------------------

    def _run_writer(self, conn: sqlite3.Connection) -> None:
        failures = 0  # in a row: the retry waits longer each time, up to 30 s
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._dirty or self._ops or self._stopping)
                    stopping, self._dirty = self._stopping, False
                    ops, self._ops = self._ops, []
                    batch = dict(self._hot)
                sweeps = [op for op in ops if isinstance(op, _Sweep)]
                error = self._commit(conn, batch, sweeps)
                _settle([op for op in ops if isinstance(op, asyncio.Future)], error, self.path)
                with self._cond:
                    if error is None:
                        failures = 0
                        for job_id, entry in batch.items():
                            if self._hot.get(job_id) is entry:  # not put again meanwhile
                                del self._hot[job_id]
                        self._sweeps_pending -= len(sweeps)
                        if not self._sweeps_pending:
                            self._floor = None
                    elif not stopping:  # the batch is still hot: retry it with what comes next
                        failures += 1
                        self._ops[:0] = sweeps
                        self._dirty = True
                        self._cond.wait_for(self._retry_now, min(2.0 ** (failures - 1), 30.0))
                if stopping:
                    if error is not None:
                        lost = sum(e.record is not None for e in batch.values())
                        log.error("%d job records could not be saved to %s", lost, self.path)
                    return
        finally:
            conn.close()

    def _retry_now(self) -> bool:
        # A flush (or close) asks for a try now; puts alone would spin on a full disk.
        return self._stopping or any(isinstance(op, asyncio.Future) for op in self._ops)

    def _commit(
        self, conn: sqlite3.Connection, batch: dict[str, _Entry], sweeps: builtins.list[_Sweep]
    ) -> Exception | None:
        """Write one batch in one transaction; a failure is logged and returned, not raised:
        the writer must live on, and the records stay hot (readable) for the retry."""
        try:
            rows = [_row(e.record, e) for e in batch.values() if e.record is not None]
            with conn:  # commits, or rolls back on an exception
                # Deletes first: puts in this batch came after these sweeps or survived them.
                for sweep in sweeps:
                    conn.execute(f"DELETE FROM jobs WHERE {_EXPIRED}", (sweep.before,))
                    conn.executemany("DELETE FROM jobs WHERE id = ?", [(i,) for i in sweep.ids])
                conn.executemany(_UPSERT, rows)
        except Exception as exc:
            log.exception(
                "could not save %d job records to %s; keeping them in memory and retrying",
                len(batch),
                self.path,
            )
            return exc
        return None


def _row(record: JobRecord, entry: _Entry) -> tuple[Any, ...]:
    request = None if entry.request is None else json.dumps(entry.request.to_dict())
    return (
        record.id,
        record.model,
        record.status.value,
        record.timings.created_at,
        record.timings.finished_at,
        entry.seq,
        json.dumps(record.to_dict()),
        request,
        record.user,
    )


def _load_record(text: str) -> JobRecord:
    return JobRecord.from_dict(json.loads(text))


def _load_request(text: str | None) -> GenerationRequest | None:
    return None if text is None else GenerationRequest.from_dict(json.loads(text))


def _settle(
    flushes: builtins.list[asyncio.Future[None]], error: Exception | None, path: Path
) -> None:
    for done in flushes:
        with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits any more
            done.get_loop().call_soon_threadsafe(_resolve, done, error, path)


def _resolve(done: asyncio.Future[None], error: Exception | None, path: Path) -> None:
    if done.done():  # the flush was cancelled
        return
    if error is None:
        done.set_result(None)
    else:
        message = f"could not write the job mailbox {path} ({error}); the write is retried"
        done.set_exception(LLMError(message))
