"""What ``%llm models``, ``%llm status`` and ``%llm jobs`` show: small tables as mime
bundles (``text/plain`` for consoles and saved notebooks, ``text/html`` for JupyterLab)."""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from typing import Any

from ..types import JobRecord

__all__ = [
    "jobs_report",
    "loading_text",
    "models_report",
    "precision_text",
    "status_report",
    "table",
]

_PREVIEW = 48  # characters of a job's text shown in %llm jobs


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], title: str = "") -> dict[str, Any]:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = [title] if title else []
    lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    lines.extend(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )
    head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td style='text-align:left'>{html.escape(c)}</td>" for c in row)
        + "</tr>"
        for row in rows
    )
    caption = f"<caption style='text-align:left'>{html.escape(title)}</caption>" if title else ""
    return {
        "text/plain": "\n".join(lines),
        "text/html": f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>",
    }


def models_report(models: Sequence[dict[str, Any]]) -> dict[str, Any]:
    rows = []
    for model in models:
        workers = model.get("workers") or []
        ready = sum(1 for w in workers if w.get("state") == "ready")
        state = str(model.get("state"))
        if model.get("error"):
            state += f": {model['error']}"
        elif model.get("loading"):
            state += f": {loading_text(model['loading'])}"
            if model["loading"].get("detail"):
                state += f" ({model['loading']['detail']})"
        rows.append(
            [
                str(model.get("name")),
                state,
                str(model.get("backend")),
                str(model.get("device") or "-"),
                precision_text(workers),
                f"{ready}/{len(workers)}",
                str(model.get("total_units", "-")),
            ]
        )
    headers = ["model", "state", "backend", "device", "precision", "workers", "units"]
    return table(headers, rows)


def precision_text(workers: Sequence[dict[str, Any]]) -> str:
    """The ready workers' dtype and matmul path (``bfloat16, oneDNN packed``), each distinct
    one once; ``-`` where none reports one (a remote model, or none ready yet)."""
    seen: list[str] = []
    for worker in workers:
        parts = [str(worker[key]) for key in ("dtype", "matmul") if worker.get(key)]
        if parts and ", ".join(parts) not in seen:
            seen.append(", ".join(parts))
    return "; ".join(seen) or "-"


def loading_text(loading: dict[str, Any]) -> str:
    """A load's phase as a person reads it: ``converting GGUF, 12 s``, or with numbers
    ``downloading 12.5/270.0 MB at 8.1 MB/s, 3 s`` (from ``GET llm/api/models``)."""
    words = str(loading.get("phase") or "loading")
    done, total = loading.get("done"), loading.get("total")
    unit, rate = loading.get("unit"), loading.get("rate")
    if done is not None:
        if unit == "bytes":
            words += f" {_megabytes(done)}" + (f"/{_megabytes(total)}" if total else "") + " MB"
            if rate:
                words += f" at {_megabytes(rate)} MB/s"
        else:
            words += f" {done:g}" + (f"/{total:g}" if total is not None else "")
            words += f" {unit}" if unit else ""
    seconds = loading.get("seconds")
    return words if seconds is None else f"{words}, {seconds:.0f} s"


def _megabytes(count: float) -> str:
    return f"{count / 1e6:.1f}"


def status_report(where: str, why: str, stats: dict[str, Any], live: int) -> dict[str, Any]:
    lines = [
        f"jupyter_llm: {where}",
        f"  chosen because: {why}" if why else "",
        f"  jobs: {stats.get('running', 0)} running, {stats.get('queued', 0)} queued "
        f"({live} from this kernel still going)",
        f"  units: {stats.get('used_units', 0)} of {stats.get('total_units', 0)} in use; "
        f"{stats.get('workers', 0)} workers",
        "  finished: "
        + ", ".join(
            f"{stats.get(k, 0)} {k}"
            for k in ("completed", "failed", "cancelled", "expired", "rejected")
        ),
    ]
    text = "\n".join(line for line in lines if line)
    return {"text/plain": text}


def jobs_report(records: Sequence[JobRecord], now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    rows = []
    for record in records:
        preview = "".join(c if c.isprintable() else " " for c in record.text)  # one line
        if len(preview) > _PREVIEW:
            preview = preview[: _PREVIEW - 1] + "…"
        rows.append(
            [
                record.id[:8],
                record.model,
                record.status.value,
                str(record.usage.completion_tokens),
                _age(now - record.timings.created_at),
                preview or (record.error or ""),
            ]
        )
    if not rows:
        return {"text/plain": "no jobs yet"}
    return table(["id", "model", "status", "tokens", "age", "text"], rows)


def _age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
