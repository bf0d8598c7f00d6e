"""Models from the Hugging Face Hub: the local cache first, else one resumable download.

``ensure_snapshot`` (an ``hf_id``) and ``ensure_file`` (a ``gguf: owner/repo:file``) return
a local path. A model already in the cache is used without asking the hub. Otherwise, unless
``HF_HUB_OFFLINE`` is set or the model says ``download: false``, its files are downloaded
into the standard Hugging Face cache (``HF_HUB_CACHE``; the layout ``huggingface_hub``
itself uses, so other tools share the files): only what a model needs (config, tokenizer,
chat template, safetensors weights), config.json last, so that a snapshot with a config
is complete. ``pull_snapshot`` always asks the hub (``jupyter llm pull``: fetch or update).

One download per model at a time (a file lock in the cache's ``.locks``); whoever waits
hears the downloader's progress. Each file goes to ``blobs/<etag>.incomplete`` first and
resumes from there after any interruption. The hub's endpoint (``HF_ENDPOINT``) and token
(``HF_TOKEN``) are huggingface_hub's; failures become one ``SourceError`` that names the
repo and says what to do.

No torch here: the ``jupyter llm`` command imports this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

from ..errors import SourceError
from .transfer import Meter, ProgressCallback, exclusive, fetch_resumable, shared_reporter

__all__ = [
    "cached_file",
    "cached_snapshot",
    "ensure_file",
    "ensure_snapshot",
    "hub_cache",
    "is_complete",
    "offline",
    "pull_file",
    "pull_snapshot",
    "select_files",
]

_CONFIG = "config.json"
_WANTED = (  # besides the weights; whichever of these the repo has
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "chat_template.jinja",
    "chat_template.json",
)
_TOKENIZERS = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt")
_WEIGHTS = (  # (index, single file, pattern of shards): the first the repo has wins
    ("model.safetensors.index.json", "model.safetensors", ".safetensors"),
    ("pytorch_model.bin.index.json", "pytorch_model.bin", ".bin"),
)
_COMMIT = re.compile(r"[0-9a-f]{40}")


def hub_cache() -> Path:
    """The Hugging Face cache: ``HF_HUB_CACHE``, else ``$HF_HOME/hub``, as huggingface_hub says."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT).rstrip("/")


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.is_offline_mode())


def _storage(repo_id: str) -> Path:
    return hub_cache() / ("models--" + repo_id.replace("/", "--"))


def _lock(repo_id: str) -> Path:
    # Beside huggingface_hub's own per-file locks, which live under .locks/ in the cache.
    return hub_cache() / ".locks" / ("models--" + repo_id.replace("/", "--")) / "jupyter_llm.lock"


def _commit_of(storage: Path, revision: str | None) -> str | None:
    revision = revision or "main"
    if _COMMIT.fullmatch(revision):
        return revision
    try:
        return (storage / "refs" / revision).read_text().strip() or None
    except OSError:
        return None


def is_complete(folder: Path) -> bool:
    """Has ``folder`` a config, a tokenizer and every weight file its index names?"""
    if not (folder / _CONFIG).is_file():
        return False
    if not any((folder / name).is_file() for name in _TOKENIZERS):
        return False
    for index, single, suffix in _WEIGHTS:
        if (folder / index).is_file():
            try:
                shards = set(json.loads((folder / index).read_text())["weight_map"].values())
            except (OSError, ValueError, KeyError, AttributeError):
                return False
            return all((folder / shard).is_file() for shard in shards)
        if (folder / single).is_file() or any(folder.glob("*" + suffix)):
            return True
    return False


def cached_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The complete snapshot of ``repo_id`` at ``revision`` in the cache, or None."""
    storage = _storage(repo_id)
    commit = _commit_of(storage, revision)
    if commit is None:
        return None
    folder = storage / "snapshots" / commit
    return folder if is_complete(folder) else None


def cached_file(repo_id: str, filename: str, revision: str | None = None) -> Path | None:
    storage = _storage(repo_id)
    commit = _commit_of(storage, revision)
    if commit is None:
        return None
    path = storage / "snapshots" / commit / filename
    return path if path.is_file() else None


def ensure_snapshot(
    repo_id: str,
    revision: str | None = None,
    *,
    download: bool = True,
    on_progress: ProgressCallback | None = None,
) -> Path:
    """A local folder with the model's files: from the cache, else downloaded (see module)."""
    found = cached_snapshot(repo_id, revision)
    if found is not None:
        return found
    _may_download(f"hf_id {repo_id!r}", revision, download, repo_id)
    lock = _lock(repo_id)
    with exclusive(lock, on_progress):
        found = cached_snapshot(repo_id, revision)  # another worker may have fetched it
        if found is not None:
            return found
        return pull_snapshot(repo_id, revision, on_progress=shared_reporter(lock, on_progress))


def ensure_file(
    repo_id: str,
    filename: str,
    revision: str | None = None,
    *,
    download: bool = True,
    on_progress: ProgressCallback | None = None,
) -> Path:
    """One file of a hub repo (a .gguf): from the cache, else downloaded."""
    found = cached_file(repo_id, filename, revision)
    if found is not None:
        return found
    _may_download(f"gguf {repo_id}:{filename}", revision, download, f"{repo_id}:{filename}")
    lock = _lock(repo_id)
    with exclusive(lock, on_progress):
        found = cached_file(repo_id, filename, revision)
        if found is not None:
            return found
        return pull_file(
            repo_id, filename, revision, on_progress=shared_reporter(lock, on_progress)
        )


def _may_download(what: str, revision: str | None, download: bool, pull: str) -> None:
    at = f" at revision {revision!r}" if revision else ""
    missing = f"{what}{at} is not in the Hugging Face cache ({hub_cache()})"
    if not download:
        raise SourceError(
            f"{missing} and the model says download: false; fetch it ahead of time "
            f"(jupyter llm pull {pull}) or remove download: false"
        )
    if offline():
        raise SourceError(
            f"{missing} and HF_HUB_OFFLINE is set, so it cannot be downloaded: unset "
            f"HF_HUB_OFFLINE, or fetch it where the hub is reachable (jupyter llm pull {pull})"
        )


def pull_snapshot(
    repo_id: str, revision: str | None = None, *, on_progress: ProgressCallback | None = None
) -> Path:
    """Ask the hub for ``repo_id``'s files at ``revision`` and download what the cache lacks."""
    from huggingface_hub import HfApi

    with hub_errors(repo_id, revision):
        info = HfApi(endpoint=_endpoint()).model_info(repo_id, revision=revision)
        if info.sha is None:
            raise SourceError(f"the hub did not say which commit {repo_id} is at")
        fetcher = _Fetcher(repo_id, info.sha)
        names = [sibling.rfilename for sibling in info.siblings or []]
        wanted = select_files(repo_id, names, fetcher.read_json)
        fetcher.fetch(wanted, on_progress)
    _write_ref(_storage(repo_id), revision, info.sha)
    return fetcher.folder


def pull_file(
    repo_id: str,
    filename: str,
    revision: str | None = None,
    *,
    on_progress: ProgressCallback | None = None,
) -> Path:
    """Ask the hub for one file of ``repo_id`` at ``revision`` and download it if missing."""
    from huggingface_hub import HfApi

    with hub_errors(repo_id, revision, filename):
        info = HfApi(endpoint=_endpoint()).model_info(repo_id, revision=revision)
        if info.sha is None:
            raise SourceError(f"the hub did not say which commit {repo_id} is at")
        names = [sibling.rfilename for sibling in info.siblings or []]
        if filename not in names:
            ggufs = ", ".join(n for n in names if n.endswith(".gguf")) or "none"
            raise SourceError(f"{repo_id} has no file {filename!r}; its .gguf files: {ggufs}")
        fetcher = _Fetcher(repo_id, info.sha)
        fetcher.fetch([filename], on_progress)
    _write_ref(_storage(repo_id), revision, info.sha)
    return fetcher.folder / filename


def select_files(repo_id: str, names: list[str], read_json: Callable[[str], object]) -> list[str]:
    """The files a model needs, out of the repo's ``names``; config.json last.

    Only the top level: subfolders hold other formats (onnx/, original/...). Weights are
    safetensors (all shards an index names), else PyTorch .bin files as a fallback.
    """
    top = {name for name in names if "/" not in name}
    if _CONFIG not in top:
        ggufs = sorted(n for n in top if n.endswith(".gguf"))
        hint = f"; it has GGUF files: use gguf: {repo_id}:{ggufs[0]}" if ggufs else ""
        raise SourceError(
            f"{repo_id} has no config.json at its top level, so it is not a "
            f"transformers model{hint}"
        )
    chosen = [name for name in _WANTED if name in top]
    for index, single, suffix in _WEIGHTS:
        if index in top:
            try:
                shards = sorted(set(_weight_map(read_json(index))))
            except (KeyError, TypeError, AttributeError):
                raise SourceError(f"{repo_id}: {index} has no weight_map") from None
            absent = [shard for shard in shards if shard not in top]
            if absent:
                raise SourceError(f"{repo_id}: {index} names files the repo lacks: {absent}")
            return [index, *chosen, *shards, _CONFIG]
        if single in top:
            return [*chosen, single, _CONFIG]
        several = sorted(n for n in top if n.endswith(suffix))
        if several:
            return [*chosen, *several, _CONFIG]
    raise SourceError(
        f"{repo_id} has no weights jupyter_llm can load (*.safetensors or pytorch_model.bin "
        "at the top level of the repo)"
    )


def _weight_map(data: object) -> list[str]:
    if not isinstance(data, dict):
        raise TypeError("not a mapping")
    return [str(v) for v in data["weight_map"].values()]


class _Fetcher:
    """Downloads files of one repo at one commit into the cache's blobs and snapshot."""

    def __init__(self, repo_id: str, commit: str) -> None:
        # Documented as huggingface_hub.utils.build_hf_headers; exported lazily there.
        from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

        self.repo_id = repo_id
        self.commit = commit
        self.storage = _storage(repo_id)
        self.folder = self.storage / "snapshots" / commit
        self.headers = build_hf_headers()

    def read_json(self, filename: str) -> object:
        self.fetch([filename], None)
        return json.loads((self.folder / filename).read_text())

    def fetch(self, filenames: list[str], on_progress: ProgressCallback | None) -> None:
        from huggingface_hub import get_hf_file_metadata

        plan: list[tuple[str, str, Path, int | None]] = []
        for filename in filenames:
            if (self.folder / filename).is_file():
                continue
            url = f"{_endpoint()}/{self.repo_id}/resolve/{self.commit}/{quote(filename)}"
            meta = get_hf_file_metadata(url, endpoint=_endpoint())
            if meta.etag is None:
                raise SourceError(f"the hub sent no ETag for {self.repo_id}/{filename}")
            plan.append((filename, url, self.storage / "blobs" / meta.etag, meta.size))
        blobs = {blob: size or 0 for _, _, blob, size in plan}  # equal files share a blob
        meter = Meter(sum(blobs.values()), sum(_have(blob) for blob in blobs), on_progress)
        for filename, url, blob, size in plan:
            meter.file = filename
            if not blob.is_file():
                fetch_resumable(url, blob, size, self.headers, meter)
            _link(blob, self.folder / filename)
        meter.report()


def _have(blob: Path) -> int:
    for path in (blob, blob.with_name(blob.name + ".incomplete")):
        with contextlib.suppress(OSError):
            return path.stat().st_size
    return 0


def _link(blob: Path, pointer: Path) -> None:
    """The snapshot's entry for a blob: a relative symlink, as huggingface_hub makes it."""
    pointer.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        pointer.unlink()
    try:
        os.symlink(os.path.relpath(blob, pointer.parent), pointer)
    except OSError:  # no symlinks here (some Windows and network filesystems): a copy
        shutil.copyfile(blob, pointer)


def _write_ref(storage: Path, revision: str | None, commit: str) -> None:
    revision = revision or "main"
    if revision == commit:
        return
    ref = storage / "refs" / revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    staging = ref.with_name(f"{ref.name}.{os.getpid()}.tmp")
    staging.write_text(commit)
    os.replace(staging, ref)


@contextlib.contextmanager
def hub_errors(repo_id: str, revision: str | None, filename: str | None = None) -> Iterator[None]:
    """Turn huggingface_hub's failures into a ``SourceError`` that says what to do."""
    import httpx2
    from huggingface_hub import errors

    page = f"{_endpoint()}/{repo_id}"
    try:
        yield
    except errors.GatedRepoError:
        raise SourceError(
            f"{repo_id} is a gated model: accept its licence on {page} while logged in, then "
            "give jupyter_llm a token of that account (set HF_TOKEN, or run `hf auth login`)"
            + ("; the token in use has no access yet" if _has_token() else "")
        ) from None
    except errors.RepositoryNotFoundError:
        raise SourceError(
            f"no model {repo_id!r} on {_endpoint()}, or it is private: check the exact name "
            "(owner/name as on the model's page); for a private model, set HF_TOKEN to a "
            "token that can read it"
        ) from None
    except errors.RevisionNotFoundError:
        raise SourceError(
            f"{repo_id} has no revision {revision!r}: give a branch, tag or commit of the repo"
        ) from None
    except errors.RemoteEntryNotFoundError:
        raise SourceError(f"{repo_id} has no file {filename!r} at that revision") from None
    except errors.OfflineModeIsEnabled:
        raise SourceError(
            f"{repo_id} must be downloaded but HF_HUB_OFFLINE is set: unset it"
        ) from None
    except errors.HfHubHTTPError as e:
        status = e.response.status_code
        if status in (401, 403):
            raise SourceError(
                f"the hub refused access to {repo_id} ({status}): set HF_TOKEN to a token "
                "that can read it"
            ) from None
        raise SourceError(f"the hub answered {status} for {repo_id}: {e}") from None
    except (httpx2.TransportError, OSError) as e:
        raise SourceError(
            f"cannot download {repo_id} from {_endpoint()}: {type(e).__name__}: {e}. Check "
            "the network (or HF_ENDPOINT), or set HF_HUB_OFFLINE=1 and use cached models"
        ) from None


def _has_token() -> bool:
    from huggingface_hub import get_token

    return get_token() is not None
