"""The job mailbox: both backends behave alike; sqlite also survives a restart and never
makes the event loop wait on the disk."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from jupyter_llm.errors import ConfigError, LLMError
from jupyter_llm.pool.mailbox import Mailbox, MemoryMailbox, default_mailbox_path, open_mailbox
from jupyter_llm.pool.mailbox.sqlite import SqliteMailbox
from jupyter_llm.types import (
    GenerationRequest,
    JobRecord,
    JobStatus,
    Message,
    Priority,
    SamplingParams,
    Timings,
    Usage,
)

T0 = 1_700_000_000.0


def record(
    job_id: str,
    created: float = T0,
    status: JobStatus = JobStatus.COMPLETED,
    *,
    model: str = "m",
    finished: float | None = None,
    text: str = "",
    user: str | None = None,
) -> JobRecord:
    if finished is None and status.terminal:
        finished = created + 1
    return JobRecord(
        id=job_id,
        model=model,
        status=status,
        timings=Timings(created_at=created, finished_at=finished),
        text=text,
        user=user,
    )


def full_record(job_id: str = "job-full") -> JobRecord:
    return JobRecord(
        id=job_id,
        model="smollm2",
        status=JobStatus.FAILED,
        timings=Timings(
            created_at=T0 + 0.125,
            started_at=T0 + 0.5,
            first_token_at=T0 + 0.75,
            finished_at=T0 + 2.0625,
        ),
        priority=Priority.HIGH,
        text="Bonjour « monde » 🌍\nsecond line",
        finish_reason="error",
        usage=Usage(prompt_tokens=12, completion_tokens=34),
        error="worker lost",
        user="ada",
    )


CHAT = GenerationRequest(
    model="smollm2",
    messages=(Message("system", "be brief"), Message("user", "hi ✨")),
    params=SamplingParams(
        max_tokens=64,
        temperature=0.2,
        top_k=40,
        stop=("\n\n",),
        seed=7,
        logprobs=True,
        top_logprobs=3,
    ),
    priority=Priority.HIGH,
)
PROMPT = GenerationRequest(model="other", prompt="Once upon a time")


def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "mailbox.sqlite"


@pytest.fixture(params=["memory", "sqlite"])
async def mailbox(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Mailbox]:
    box = open_mailbox(request.param, str(sqlite_path(tmp_path)))
    yield box
    await box.close()


@pytest.fixture
async def sqlite_box(tmp_path: Path) -> AsyncIterator[SqliteMailbox]:
    box = SqliteMailbox(sqlite_path(tmp_path))
    yield box
    await box.close()


def ids(records: list[JobRecord]) -> list[str]:
    return [r.id for r in records]


# -- shared behaviour ---------------------------------------------------------------------


async def test_put_get_round_trip_keeps_every_field(mailbox: Mailbox) -> None:
    full = full_record()
    mailbox.put(full)
    assert await mailbox.get(full.id) == full
    await mailbox.flush()  # sqlite: now read back from the file
    assert await mailbox.get(full.id) == full


async def test_get_unknown_id_is_none(mailbox: Mailbox) -> None:
    mailbox.put(record("a"))
    assert await mailbox.get("nope") is None


async def test_put_replaces_the_record_with_the_same_id(mailbox: Mailbox) -> None:
    mailbox.put(record("a", status=JobStatus.RUNNING))
    await mailbox.flush()
    mailbox.put(record("a", status=JobStatus.COMPLETED, text="done"))
    got = await mailbox.get("a")
    assert got is not None and got.status is JobStatus.COMPLETED and got.text == "done"
    assert ids(await mailbox.list()) == ["a"]


@pytest.mark.parametrize("flush_midway", [False, True])
async def test_list_is_newest_first_and_filtered(mailbox: Mailbox, flush_midway: bool) -> None:
    mailbox.put(record("old", T0, model="a"))
    mailbox.put(record("mid-1", T0 + 10, JobStatus.RUNNING, model="b"))
    mailbox.put(record("new", T0 + 20, JobStatus.FAILED, model="a"))
    if flush_midway:  # sqlite: some rows on disk, some hot; the merge must keep the order
        await mailbox.flush()
    mailbox.put(record("mid-2", T0 + 10, JobStatus.QUEUED, model="a"))  # tie: later put first
    mailbox.put(record("older", T0 - 5, model="b"))

    assert ids(await mailbox.list()) == ["new", "mid-2", "mid-1", "old", "older"]
    assert ids(await mailbox.list(2)) == ["new", "mid-2"]
    assert ids(await mailbox.list(0)) == []
    assert ids(await mailbox.list(model="a")) == ["new", "mid-2", "old"]
    assert ids(await mailbox.list(model="b", limit=1)) == ["mid-1"]
    assert ids(await mailbox.list(status=JobStatus.COMPLETED)) == ["old", "older"]
    assert ids(await mailbox.list(model="a", status=JobStatus.COMPLETED)) == ["old"]
    assert await mailbox.list(model="zzz") == []

    mailbox.put(record("old", T0 + 30, model="a"))  # replaced: moves to the front, once
    assert ids(await mailbox.list(3)) == ["old", "new", "mid-2"]


@pytest.mark.parametrize("flush_midway", [False, True])
async def test_list_keeps_one_owners_records(mailbox: Mailbox, flush_midway: bool) -> None:
    mailbox.put(record("ada-1", T0, user="ada"))
    mailbox.put(record("bob-1", T0 + 1, user="bob"))
    mailbox.put(record("nobody", T0 + 2))
    if flush_midway:
        await mailbox.flush()
    mailbox.put(record("ada-2", T0 + 3, JobStatus.RUNNING, user="ada"))
    mailbox.put(record("bob-2", T0 + 4, user="bob"))

    assert ids(await mailbox.list(owner="ada")) == ["ada-2", "ada-1"]
    assert ids(await mailbox.list(1, owner="bob")) == ["bob-2"]
    assert ids(await mailbox.list(owner="ada", status=JobStatus.COMPLETED)) == ["ada-1"]
    assert await mailbox.list(owner="eve") == []
    assert ids(await mailbox.list()) == ["bob-2", "ada-2", "nobody", "bob-1", "ada-1"]
    assert (await mailbox.get("ada-2")).user == "ada"  # type: ignore[union-attr]


@pytest.mark.parametrize("flush_midway", [False, True])
async def test_list_filters_by_kind(mailbox: Mailbox, flush_midway: bool) -> None:
    mailbox.put(replace(record("chat", T0), kind="generate"))
    mailbox.put(replace(record("ghost", T0 + 1), kind="completion"))
    if flush_midway:
        await mailbox.flush()
    mailbox.put(replace(record("ghost-2", T0 + 2, JobStatus.RUNNING), kind="completion"))
    assert ids(await mailbox.list(kind="completion")) == ["ghost-2", "ghost"]
    assert ids(await mailbox.list(kind="generate")) == ["chat"]
    assert ids(await mailbox.list(kind="completion", status=JobStatus.COMPLETED)) == ["ghost"]


async def test_unfinished_are_queued_and_running_oldest_first_with_requests(
    mailbox: Mailbox,
) -> None:
    mailbox.put(record("done", T0, JobStatus.COMPLETED), PROMPT)
    mailbox.put(record("run", T0 + 2, JobStatus.QUEUED), CHAT)
    mailbox.put(record("wait", T0 + 1, JobStatus.QUEUED, model="other"), PROMPT)
    mailbox.put(record("bare", T0 + 3, JobStatus.QUEUED))
    await mailbox.flush()
    # A later put without a request keeps the stored one, whether the first is on disk or hot.
    mailbox.put(record("run", T0 + 2, JobStatus.RUNNING))
    mailbox.put(record("late", T0 + 4, JobStatus.QUEUED), CHAT)
    mailbox.put(record("late", T0 + 4, JobStatus.RUNNING))

    for _ in range(2):  # before and after the flush
        found = await mailbox.unfinished()
        assert [(r.id, r.status) for r, _ in found] == [
            ("wait", JobStatus.QUEUED),
            ("run", JobStatus.RUNNING),
            ("bare", JobStatus.QUEUED),
            ("late", JobStatus.RUNNING),
        ]
        assert [req for _, req in found] == [PROMPT, CHAT, None, CHAT]
        await mailbox.flush()


async def test_sweep_drops_only_terminal_records_older_than_the_cutoff(mailbox: Mailbox) -> None:
    cutoff = T0 + 100
    mailbox.put(record("old-done", T0, JobStatus.COMPLETED, finished=T0 + 50))
    mailbox.put(record("old-failed", T0, JobStatus.FAILED, finished=T0 + 99))
    mailbox.put(record("at-cutoff", T0, JobStatus.CANCELLED, finished=cutoff))
    mailbox.put(record("new-expired", T0, JobStatus.EXPIRED, finished=T0 + 150))
    mailbox.put(record("old-queued", T0 - 500, JobStatus.QUEUED))
    mailbox.put(record("old-running", T0 - 500, JobStatus.RUNNING))
    # Running on disk, then finished long ago in a put the writer may not have seen yet.
    mailbox.put(record("finished-late", T0, JobStatus.RUNNING))
    await mailbox.flush()
    mailbox.put(record("finished-late", T0, JobStatus.COMPLETED, finished=T0 + 1))
    mailbox.put(record("hot-old", T0, JobStatus.COMPLETED, finished=T0 + 2))

    mailbox.sweep(cutoff)
    kept = ["at-cutoff", "new-expired", "old-queued", "old-running"]
    gone = ["old-done", "old-failed", "finished-late", "hot-old"]
    for _ in range(2):  # seen at once, and still so once the sweep is on disk
        assert sorted(ids(await mailbox.list(100))) == kept
        for job_id in gone:
            assert await mailbox.get(job_id) is None
        await mailbox.flush()

    mailbox.put(record("old-done", T0, JobStatus.COMPLETED, finished=T0 + 50))  # put again
    assert await mailbox.get("old-done") is not None
    await mailbox.flush()
    assert await mailbox.get("old-done") is not None


async def test_durable_and_close_is_idempotent(mailbox: Mailbox) -> None:
    assert mailbox.durable is isinstance(mailbox, SqliteMailbox)
    await mailbox.close()
    await mailbox.close()


# -- sqlite -------------------------------------------------------------------------------


async def test_sqlite_reads_its_own_writes_before_any_flush(sqlite_box: SqliteMailbox) -> None:
    for i in range(200):
        sqlite_box.put(record(f"j{i}", T0 + i, JobStatus.QUEUED), PROMPT)
        assert (await sqlite_box.get(f"j{i}")) == record(f"j{i}", T0 + i, JobStatus.QUEUED)
    assert ids(await sqlite_box.list(3)) == ["j199", "j198", "j197"]
    assert len(await sqlite_box.unfinished()) == 200


async def test_sqlite_records_survive_close_and_reopen(tmp_path: Path) -> None:
    path = sqlite_path(tmp_path)
    first = SqliteMailbox(path)
    full = full_record()
    first.put(full, PROMPT)
    first.put(record("q", T0, JobStatus.QUEUED, text="partial"), CHAT)
    first.put(record("gone", T0, finished=T0 + 1))
    first.sweep(T0 + 1.5)  # drops "gone" (finished T0 + 1), keeps the full one
    await first.close()  # no flush: close must write everything

    second = SqliteMailbox(path)
    try:
        assert await second.get(full.id) == full
        assert await second.get("gone") is None
        [(queued, request)] = await second.unfinished()
        assert queued.text == "partial" and request == CHAT
        second.put(record("r", T0, JobStatus.QUEUED))  # same created_at: later put is newer
        assert ids(await second.list()) == [full.id, "r", "q"]
    finally:
        await second.close()


async def test_sqlite_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    path = sqlite_path(tmp_path)
    old = os.umask(0o002)  # a permissive umask must not widen the mailbox
    try:
        box = SqliteMailbox(path)
        box.put(full_record(), PROMPT)
        await box.flush()
    finally:
        os.umask(old)
    try:
        files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
        assert {p.name for p in files} >= {path.name, path.name + "-wal"}
        for file in files:
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    finally:
        await box.close()


async def test_sqlite_existing_world_readable_file_is_made_private(tmp_path: Path) -> None:
    path = sqlite_path(tmp_path)
    await SqliteMailbox(path).close()
    path.chmod(0o644)
    box = SqliteMailbox(path)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        await box.close()


async def test_sqlite_puts_do_not_block_the_loop(sqlite_box: SqliteMailbox) -> None:
    records = [record(f"j{i}", T0 + i, text="x" * 200) for i in range(2000)]
    started = time.perf_counter()
    for r in records:
        sqlite_box.put(r, PROMPT)
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5, f"2,000 puts took {elapsed:.3f} s on the loop"

    await sqlite_box.flush()
    with sqlite3.connect(sqlite_box.path) as conn:  # what a restart would find
        assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone() == (2000,)
    assert len(await sqlite_box.list(5000)) == 2000


async def test_sqlite_close_joins_the_writer_thread(tmp_path: Path) -> None:
    box = SqliteMailbox(sqlite_path(tmp_path))
    box.put(record("a"))
    await box.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("jupyter_llm-mailbox")]
    with pytest.raises(RuntimeError, match="closed"):
        box.put(record("b"))


async def test_sqlite_failed_write_is_logged_kept_and_retried(
    sqlite_box: SqliteMailbox, caplog: pytest.LogCaptureFixture
) -> None:
    with sqlite3.connect(sqlite_box.path) as conn:  # a real write failure, like a full disk
        conn.execute(
            "CREATE TRIGGER no_room BEFORE INSERT ON jobs "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    with caplog.at_level(logging.ERROR, logger="jupyter_llm.mailbox"):
        sqlite_box.put(record("a", text="keep me"))
        with pytest.raises(LLMError, match="disk is full"):
            await sqlite_box.flush()
    assert "could not save" in caplog.text
    assert (await sqlite_box.get("a")) == record("a", text="keep me")

    with sqlite3.connect(sqlite_box.path) as conn:
        conn.execute("DROP TRIGGER no_room")
    await asyncio.wait_for(sqlite_box.flush(), timeout=5)  # the writer lived on and retried
    with sqlite3.connect(sqlite_box.path) as conn:
        assert conn.execute("SELECT id FROM jobs").fetchall() == [("a",)]


# The schema before jobs had owners, as the first releases wrote it.
_OLD_SCHEMA = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, model TEXT NOT NULL, status TEXT NOT NULL,
    created_at REAL NOT NULL, finished_at REAL, seq INTEGER NOT NULL,
    record TEXT NOT NULL, request TEXT
);
CREATE INDEX jobs_created_at ON jobs (created_at);
CREATE INDEX jobs_status ON jobs (status);
"""


async def test_sqlite_file_from_before_users_loads_and_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript(_OLD_SCHEMA)
    done = record("done", T0).to_dict()
    queued = record("queued", T0 + 1, JobStatus.QUEUED).to_dict()
    for data in (done, queued):
        del data["user"]  # the old records' JSON never had the key
    kept = json.dumps(PROMPT.to_dict())
    rows = [
        ("done", "m", "completed", T0, T0 + 1, 1, json.dumps(done), None),
        ("queued", "m", "queued", T0 + 1, None, 2, json.dumps(queued), kept),
    ]
    with old:
        old.executemany("INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    old.close()

    box = SqliteMailbox(path)
    try:
        assert ids(await box.list()) == ["queued", "done"]
        got = await box.get("done")
        assert got is not None and got.user is None and got.status is JobStatus.COMPLETED
        assert [(r.id, q) for r, q in await box.unfinished()] == [("queued", PROMPT)]
        assert await box.list(owner="ada") == []
        box.put(record("new", T0 + 2, user="ada"))
        await box.flush()
        assert ids(await box.list(owner="ada")) == ["new"]
    finally:
        await box.close()
    conn = sqlite3.connect(path)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(jobs)")]
    owners = dict(conn.execute("SELECT id, user FROM jobs").fetchall())
    conn.close()
    assert columns[-1] == "user"
    assert owners == {"done": None, "queued": None, "new": "ada"}
    again = SqliteMailbox(path)  # opening the migrated file again changes nothing
    try:
        assert ids(await again.list()) == ["new", "queued", "done"]
    finally:
        await again.close()


async def test_sqlite_corrupt_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "mailbox.sqlite"
    path.write_bytes(b"this is not a database\x00\xff" * 200)
    with pytest.raises(ConfigError) as caught:
        SqliteMailbox(path)
    assert str(path) in str(caught.value)
    assert caught.value.key == "parking_lot.mailbox.path"


# -- opening ------------------------------------------------------------------------------


async def test_default_path_is_under_the_jupyter_data_dir_and_made_on_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    path = default_mailbox_path()
    assert path == tmp_path / "data" / "jupyter_llm" / "mailbox.sqlite"
    assert not path.parent.exists()
    box = open_mailbox("sqlite", None)
    try:
        assert isinstance(box, SqliteMailbox) and box.path == path and path.exists()
    finally:
        await box.close()


def test_open_mailbox_backends() -> None:
    assert isinstance(open_mailbox("memory", None), MemoryMailbox)
    with pytest.raises(ValueError, match="memory"):
        open_mailbox("redis", None)
