"""``jupyter llm pull NAME|HF_ID``: a model's files fetched (and converted) ahead of time.

A configured model is pulled from its source; anything else that looks like a hub id
(``owner/name``, or ``owner/repo:file.gguf``) is pulled as it is. A hub model always asks
the hub which commit is current, so pulling again updates it (``download: false`` and
``HF_HUB_OFFLINE`` stop only the download on first use, not this). A GGUF file is then
converted into the safetensors cache that the workers load.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..config import ModelSource, gguf_form, load_config, resolve_config_path
from ..errors import SourceError
from ..sources.transfer import human_bytes
from .inventory import disk_size
from .progress import ProgressBar

__all__ = ["pull"]

_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


def pull(name: str, config_file: str | None, revision: str | None) -> int:
    source = _source_of(name, config_file, revision)
    if source is None:
        return 0
    from ..sources import hub

    on_hub = source.kind == "hf_id" or gguf_form(source.value) == "hub"
    if on_hub:
        bar = ProgressBar(source.value)
        try:
            if source.kind == "hf_id":
                folder = hub.pull_snapshot(source.value, source.revision, on_progress=bar)
                return _done(source.value, folder)
            repo_id, _, filename = source.value.partition(":")
            hub.pull_file(repo_id, filename, source.revision, on_progress=bar)
        finally:
            bar.close()
    from ..sources.resolve import converted, converted_dir, gguf_file

    gguf = gguf_file(source)
    if not (converted_dir(gguf) / "config.json").is_file():
        print(f"converting {gguf.name} to safetensors (once; this takes a while)...", flush=True)
    return _done(source.value, converted(gguf))


def _done(what: str, folder: Path) -> int:
    print(f"{what}: {folder} ({human_bytes(disk_size(folder))})")
    return 0


def _source_of(name: str, config_file: str | None, revision: str | None) -> ModelSource | None:
    """What to pull for ``name``; None when there is nothing to pull (said why)."""
    config = load_config(resolve_config_path(config_file, root_dir="."))
    if name in config.names:
        model = config.model(name)
        if revision is not None:
            raise SourceError(f"{name} is a configured model: set its revision in {config.path}")
        source = model.source
        if model.backend != "transformers" or source is None:
            print(f"{name}: nothing to pull (the {model.backend} backend loads no files)")
            return None
        if source.kind == "local_path":
            from ..sources.hub import is_complete

            if not is_complete(Path(source.value)):
                raise SourceError(
                    f"{name}: local_path {source.value} lacks a config.json, a tokenizer "
                    "or its weights"
                )
            print(f"{name}: nothing to pull, its files are local ({source.value})")
            return None
        return source
    if _HUB_ID.fullmatch(name.partition(":")[0]):
        return ModelSource("gguf" if ":" in name else "hf_id", name, revision=revision)
    raise SourceError(
        f"{name!r} is neither a model of {config.path} ({', '.join(config.names)}) nor a hub "
        "id (owner/name, or owner/repo:file.gguf)"
    )
