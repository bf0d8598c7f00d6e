"""``jupyter llm models``: each configured model, where its files are, their size, its state.

Files are looked up, never fetched: the hub cache for ``hf_id`` and hub GGUF files, the
package or path of a GGUF file and its converted copy, a ``local_path``. The state comes
from a running jupyter_llm server when there is one (``--url``, ``JUPYTER_LLM_URL``, else
the Jupyter servers of this user that serve ``llm/api``). No torch is imported.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ModelConfig, gguf_form, load_config, resolve_config_path
from ..errors import SourceError
from ..kernel.reports import precision_text
from ..sources.transfer import Transfer, human_bytes

__all__ = [
    "FileLine",
    "describe_state",
    "disk_size",
    "file_lines",
    "list_models",
    "server_models",
]


def list_models(config_file: str | None, url: str | None, token: str | None) -> int:
    config = load_config(resolve_config_path(config_file, root_dir="."))
    print(f"models of {config.path}")
    where, states = server_models(url, token)
    for model in config.models:
        print()
        print(f"{model.name}  ({model.backend}{_source_text(model)})")
        for line in file_lines(model):
            print(f"  {line.text}")
        state = states.get(model.name)
        print(f"  state: {describe_state(state) if state else where}")
    return 0


def _source_text(model: ModelConfig) -> str:
    source = model.source
    if model.backend == "openai":
        return f", {model.base_url}"
    if source is None:
        return ""
    at = f"@{source.revision}" if source.revision else ""
    return f", {source.kind}: {source.value}{at}"


@dataclass(frozen=True, slots=True)
class FileLine:
    """One line about a model's files; ``fault``: the model cannot load as things are."""

    text: str
    fault: bool = False


def file_lines(model: ModelConfig) -> list[FileLine]:
    """Where the model's files are and how big they are, or why they are not there."""
    source = model.source
    if model.backend != "transformers" or source is None:
        return [FileLine("files: none (nothing is loaded locally)")]
    from ..sources import hub

    if source.kind == "local_path":
        folder = Path(source.value)
        if not folder.is_dir():
            return [FileLine(f"files: no folder {folder}", fault=True)]
        if not hub.is_complete(folder):
            return [FileLine(f"files: {folder} lacks a config.json, a tokenizer or weights", True)]
        return [FileLine(f"files: {folder} ({human_bytes(disk_size(folder))})")]
    if source.kind == "hf_id":
        snapshot = hub.cached_snapshot(source.value, source.revision)
        if snapshot is None:
            return [_not_downloaded("files", source.download)]
        return [FileLine(f"files: {snapshot} ({human_bytes(disk_size(snapshot))})")]
    if gguf_form(source.value) == "hub":
        repo_id, _, filename = source.value.partition(":")
        cached = hub.cached_file(repo_id, filename, source.revision)
        if cached is None:
            return [_not_downloaded("gguf", source.download)]
        gguf = cached
    else:
        from ..sources.resolve import gguf_file

        try:
            gguf = gguf_file(source)
        except SourceError as e:
            return [FileLine(f"gguf: {e}", fault=True)]
    from ..sources.resolve import converted_dir

    lines = [FileLine(f"gguf: {gguf} ({human_bytes(gguf.stat().st_size)})")]
    target = converted_dir(gguf)
    if (target / "config.json").is_file():
        lines.append(FileLine(f"converted: {target} ({human_bytes(disk_size(target))})"))
    else:
        lines.append(FileLine("converted: not yet (on the first start, or jupyter llm pull)"))
    return lines


def _not_downloaded(what: str, download: bool) -> FileLine:
    from ..sources.hub import offline

    if not download:
        return FileLine(f"{what}: not downloaded, and download: false (jupyter llm pull)", True)
    if offline():
        return FileLine(
            f"{what}: not downloaded, and HF_HUB_OFFLINE is set (jupyter llm pull)", True
        )
    return FileLine(f"{what}: not downloaded yet (on first use, or jupyter llm pull)")


def disk_size(folder: Path) -> int:
    """Bytes of the files under ``folder``, links followed (a hub snapshot links to blobs)."""
    return sum(os.stat(path).st_size for path in _files(folder))


def _files(folder: Path) -> Iterator[Path]:
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            if path.exists():
                yield path


def server_models(url: str | None, token: str | None) -> tuple[str, dict[str, dict[str, Any]]]:
    """(where the state came from or why there is none, the server's models by name)."""
    import httpx

    from ..kernel.discovery import TOKEN_ENV, URL_ENV, base_url, running_servers

    url = url or os.environ.get(URL_ENV)
    candidates: list[tuple[str, str, str | None]]
    if url:
        candidates = [(base_url(url), token or os.environ.get(TOKEN_ENV) or "", None)]
    else:
        candidates = [(s.url, s.token, s.socket) for s in running_servers()]
    for base, key, socket in candidates:
        transport = httpx.HTTPTransport(uds=socket) if socket else None
        headers = {"Authorization": f"token {key}"} if key else {}
        try:
            with httpx.Client(base_url=base, headers=headers, timeout=3, transport=transport) as c:
                response = c.get("llm/api/models")
        except httpx.HTTPError:
            continue
        if response.status_code == 200:
            return base, {m["name"]: m for m in response.json().get("models", [])}
    if url:
        return f"unknown (no jupyter_llm server answered at {url})", {}
    return "unknown (no running Jupyter server serves jupyter_llm)", {}


def describe_state(model: dict[str, Any]) -> str:
    """A model of ``GET llm/api/models`` in a line: its state, workers, device, and while it
    loads the phase with its numbers (``loading: downloading, 12 s; 3.1 MB of 9.0 MB, ...``)."""
    state = str(model.get("state"))
    if state == "error":
        return f"error: {model.get('error')}"
    workers = model.get("workers") or []
    ready = sum(1 for w in workers if w.get("state") == "ready")
    text = f"{state}, {ready} of {len(workers)} workers ready"
    if model.get("device"):
        text += f", on {model['device']}"
    precision = precision_text(workers)
    if precision != "-":
        text += f" ({precision})"
    loading = model.get("loading")
    if state == "loading" and isinstance(loading, dict) and loading.get("phase"):
        text = f"loading: {loading['phase']}, {float(loading.get('seconds') or 0):.0f} s"
        done, total = loading.get("done"), loading.get("total")
        if loading.get("unit") == "bytes" and done is not None and total:
            text += (
                f"; {Transfer(int(done), int(total), float(loading.get('rate') or 0)).describe()}"
            )
        elif done is not None:
            text += f"; {done:g}" + (f" of {total:g}" if total is not None else "")
            text += f" {loading['unit']}" if loading.get("unit") else ""
        if loading.get("detail"):
            text += f" ({loading['detail']})"
    return text
