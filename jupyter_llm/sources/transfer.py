"""Moving bytes: progress with a rate, a lock that shares its holder's progress, resumable GET.

No torch and no transformers here: the ``jupyter llm`` command uses this module too.

* ``Meter`` counts the bytes of one download (several files), keeps a rate over the last
  few seconds and reports a ``Transfer`` at most every quarter of a second, and once at the end.
* ``exclusive`` is a file lock for one download at a time per model. Whoever waits for it
  hears the holder's progress (the holder writes it next to the lock), so two workers of
  one model download once and both show the same bytes.
* ``fetch_resumable`` GETs one file into ``<blob>.incomplete`` and continues from the bytes
  already there: an interrupted transfer (a dropped connection, a killed server) resumes.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "Meter",
    "ProgressCallback",
    "Transfer",
    "exclusive",
    "fetch_resumable",
    "human_bytes",
    "shared_reporter",
]

_REPORT_EVERY = 0.25  # seconds between progress reports
_RATE_WINDOW = 5.0  # seconds of history behind the rate
_LOCK_POLL = 0.25  # seconds between tries of a held lock
_CHUNK = 64 * 1024  # bytes per read: small enough for progress to move on slow links
_RETRIES = 5  # tries in a row that bring no bytes, before a download gives up
_RETRY_FIRST = 0.5  # seconds before the first retry; doubling up to _RETRY_MAX
_RETRY_MAX = 8.0


@dataclass(frozen=True, slots=True)
class Transfer:
    """Where a download stands: bytes done of total, the recent rate, the file being fetched."""

    done: int
    total: int
    rate: float  # bytes per second over the last few seconds; 0 before two samples
    file: str = ""

    def describe(self) -> str:
        """``12.5 MB of 270.0 MB, 3.1 MB/s``: for log lines, status lines and the CLI."""
        text = f"{human_bytes(self.done)} of {human_bytes(self.total)}"
        return f"{text}, {human_bytes(self.rate)}/s" if self.rate > 0 else text


ProgressCallback = Callable[[Transfer], None]


def human_bytes(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(count) < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


class Meter:
    """Counts one download's bytes; calls ``report`` (throttled) with a ``Transfer``."""

    def __init__(self, total: int, done: int = 0, report: ProgressCallback | None = None) -> None:
        self.total = total
        self.done = done
        self.file = ""
        self._report = report
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self._last_report = 0.0

    def add(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        self._samples.append((now, self.done))
        while len(self._samples) > 2 and now - self._samples[0][0] > _RATE_WINDOW:
            self._samples.popleft()
        if now - self._last_report >= _REPORT_EVERY:
            self.report()

    def rate(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else 0.0

    def snapshot(self) -> Transfer:
        return Transfer(self.done, self.total, self.rate(), self.file)

    def report(self) -> None:
        self._last_report = time.monotonic()
        if self._report is not None:
            self._report(self.snapshot())


@contextlib.contextmanager
def exclusive(lock: Path, on_progress: ProgressCallback | None = None) -> Iterator[None]:
    """Hold ``lock`` while the body downloads; until then, relay the holder's progress.

    The holder reports through ``shared_reporter(lock, ...)``, which also writes each
    report next to the lock for the waiters to read. flock locks belong to the open file, so
    two threads of one process exclude each other as two processes do, and the lock of a
    holder that was killed is released with its files.
    """
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                shared = _read_shared(lock)
                if shared is not None and on_progress is not None:
                    on_progress(shared)
                time.sleep(_LOCK_POLL)
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                _shared_path(lock).unlink()
            fcntl.flock(handle, fcntl.LOCK_UN)


def shared_reporter(lock: Path, report: ProgressCallback | None) -> ProgressCallback:
    """A progress callback for the lock's holder: reports, and writes it for the waiters."""
    path = _shared_path(lock)

    def share(transfer: Transfer) -> None:
        staging = path.with_suffix(f".{os.getpid()}.tmp")
        staging.write_text(json.dumps(asdict(transfer)))
        os.replace(staging, path)
        if report is not None:
            report(transfer)

    return share


def _shared_path(lock: Path) -> Path:
    return lock.with_suffix(".progress.json")


def _read_shared(lock: Path) -> Transfer | None:
    try:
        data = json.loads(_shared_path(lock).read_text())
        return Transfer(int(data["done"]), int(data["total"]), float(data["rate"]), data["file"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not written yet, or written by another version: nothing to relay


def fetch_resumable(
    url: str, blob: Path, size: int | None, headers: dict[str, str], meter: Meter
) -> None:
    """Download ``url`` into ``blob``, continuing ``<blob>.incomplete`` if one is there.

    The partial file keeps its bytes when the transfer stops for any reason; the next try
    (here, after a dropped connection; or in a later process) asks for the rest with a
    Range request. The GET goes through huggingface_hub's HTTP session (its proxies,
    headers and certificates), in chunks small enough for progress to move smoothly.
    """
    import httpx2
    from huggingface_hub import constants, get_session
    from huggingface_hub.utils import hf_raise_for_status  # type: ignore[attr-defined]

    partial = blob.with_name(blob.name + ".incomplete")
    blob.parent.mkdir(parents=True, exist_ok=True)
    failures = 0
    with open(partial, "ab") as handle:
        while size is None or handle.tell() < size:
            have = handle.tell()
            asked = {**headers, "Range": f"bytes={have}-"} if have else headers
            try:
                with get_session().stream(
                    "GET", url, headers=asked, timeout=constants.HF_HUB_DOWNLOAD_TIMEOUT
                ) as response:
                    hf_raise_for_status(response)
                    if have and response.status_code != 206:  # the Range was ignored
                        handle.seek(0)
                        handle.truncate()
                        meter.add(-have)
                    for chunk in response.iter_bytes(_CHUNK):
                        handle.write(chunk)
                        meter.add(len(chunk))
                        failures = 0
                if size is None:
                    break
            except httpx2.TransportError:  # dropped, timed out, cut short: try from here
                failures += 1
                if failures > _RETRIES:
                    raise
                time.sleep(min(_RETRY_MAX, _RETRY_FIRST * 2 ** (failures - 1)))
        if size is not None and handle.tell() != size:
            raise OSError(f"{url}: got {handle.tell()} bytes, expected {size}")
    os.replace(partial, blob)
