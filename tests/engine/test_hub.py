"""Downloads from a local stand-in for the Hugging Face Hub (no test reaches the real one)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from jupyter_llm.config import ModelSource
from jupyter_llm.errors import SourceError
from jupyter_llm.sources.hub import cached_snapshot, ensure_snapshot, is_complete, select_files
from jupyter_llm.sources.resolve import gguf_file
from jupyter_llm.sources.transfer import Transfer

from ..standin_hub import TINY_REPO as REPO


@pytest.fixture
def hub(standin_hub):
    return standin_hub


def test_first_use_downloads_what_a_model_needs_into_the_standard_cache(hub, tiny_model_dir):
    folder = ensure_snapshot(REPO)
    for source in tiny_model_dir.iterdir():
        assert (folder / source.name).read_bytes() == source.read_bytes(), source.name
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        p.name for p in tiny_model_dir.iterdir()
    )
    for unwanted in ("README.md", "onnx/model.onnx", "flax_model.msgpack"):
        assert not hub.served(unwanted) and not hub.served(unwanted, "HEAD")
    # The layout is huggingface_hub's own: its cache lookup finds the files we fetched.
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(REPO, "model.safetensors")
    assert (
        isinstance(found, str) and Path(found).resolve() == (folder / "model.safetensors").resolve()
    )
    # The weights came from the "CDN" without the hub's Authorization header.
    (cdn,) = [s for s in hub.requests if s.method == "GET" and s.path.startswith("/blobs/")]
    assert cdn.range is None


def test_progress_reports_bytes_done_total_and_rate(hub, tiny_model_dir):
    hub.rate = 400_000  # bytes per second: the weights (450 kB) take about a second
    reports: list[Transfer] = []
    ensure_snapshot(REPO, on_progress=reports.append)
    total = sum(p.stat().st_size for p in tiny_model_dir.iterdir())
    assert len(reports) >= 3
    assert all(r.total == total for r in reports)
    assert [r.done for r in reports] == sorted(r.done for r in reports)
    assert reports[-1].done == total
    midway = [r for r in reports if 0 < r.done < total]
    weights = [r for r in midway if r.file == "model.safetensors"]
    assert len(weights) >= 3
    assert any(100_000 < r.rate < 2_000_000 for r in weights), [r.rate for r in weights]
    assert " kB of 451.9 kB, " in weights[-1].describe() and weights[-1].describe().endswith("/s")


def test_a_cached_model_is_used_without_the_hub_and_offline(hub, monkeypatch):
    folder = ensure_snapshot(REPO)
    asked = len(hub.requests)
    assert ensure_snapshot(REPO) == folder
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert ensure_snapshot(REPO) == folder
    assert ensure_snapshot(REPO, download=False) == folder
    assert len(hub.requests) == asked


def test_offline_and_not_cached_says_so(hub, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(
        SourceError, match=r"not in the Hugging Face cache .* HF_HUB_OFFLINE is set"
    ):
        ensure_snapshot(REPO)
    assert hub.requests == []


def test_download_false_says_how_to_fetch(hub):
    with pytest.raises(
        SourceError, match=r"download: false; .*jupyter llm pull tiny-org/tiny-llama"
    ):
        ensure_snapshot(REPO, download=False)
    assert hub.requests == []


def test_a_missing_repo_names_it_and_says_to_check_the_name(hub):
    with pytest.raises(SourceError, match=r"no model 'tiny-org/no-such' on http://127.*exact name"):
        ensure_snapshot("tiny-org/no-such")


def test_a_private_repo_needs_a_token(hub, tiny_model_dir, monkeypatch):
    hub.add("tiny-org/private", tiny_model_dir, access="private", token="hf_secret")
    with pytest.raises(SourceError, match=r"or it is private.*set HF_TOKEN"):
        ensure_snapshot("tiny-org/private")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    assert is_complete(ensure_snapshot("tiny-org/private"))


def test_a_gated_repo_says_accept_the_licence(hub, tiny_model_dir, monkeypatch):
    hub.add("tiny-org/gated", tiny_model_dir, access="gated", token="hf_accepted")
    with pytest.raises(SourceError, match=r"gated model: accept its licence on http://.*HF_TOKEN"):
        ensure_snapshot("tiny-org/gated")
    monkeypatch.setenv("HF_TOKEN", "hf_not_accepted")
    with pytest.raises(SourceError, match=r"the token in use has no access yet"):
        ensure_snapshot("tiny-org/gated")
    monkeypatch.setenv("HF_TOKEN", "hf_accepted")
    assert is_complete(ensure_snapshot("tiny-org/gated"))


def test_a_missing_revision_is_named(hub):
    with pytest.raises(SourceError, match=r"has no revision 'v9'"):
        ensure_snapshot(REPO, "v9")


def test_a_pinned_commit_is_found_in_the_cache_by_its_hash(hub):
    commit = hub._repos[REPO].commit
    folder = ensure_snapshot(REPO, commit)
    assert folder.name == commit and cached_snapshot(REPO, commit) == folder


def test_a_dropped_connection_resumes_where_it_stopped(hub, tiny_model_dir):
    hub.cut_after["model.safetensors"] = 131_072
    folder = ensure_snapshot(REPO)
    assert (folder / "model.safetensors").read_bytes() == (
        tiny_model_dir / "model.safetensors"
    ).read_bytes()
    cdn = [s.range for s in hub.requests if s.method == "GET" and s.path.startswith("/blobs/")]
    assert cdn == [None, "bytes=131072-"]


def test_a_download_killed_midway_resumes_in_the_next_process(hub, tiny_model_dir):
    hub.stall_after["model.safetensors"] = 131_072
    script = f"from jupyter_llm.sources.hub import ensure_snapshot; ensure_snapshot({REPO!r})"
    child = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy())
    digest = hashlib.sha256((tiny_model_dir / "model.safetensors").read_bytes()).hexdigest()
    partial = Path(os.environ["HF_HUB_CACHE"]) / "models--tiny-org--tiny-llama" / "blobs"
    partial = partial / f"{digest}.incomplete"
    try:
        deadline = time.monotonic() + 30
        while not (partial.is_file() and partial.stat().st_size >= 131_072):
            assert child.poll() is None, "the downloading process ended early"
            assert time.monotonic() < deadline, "the download did not start"
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
    hub.stall_after.clear()
    folder = ensure_snapshot(REPO)  # the lock died with its holder
    assert (folder / "model.safetensors").read_bytes() == (
        tiny_model_dir / "model.safetensors"
    ).read_bytes()
    cdn = [s.range for s in hub.requests if s.method == "GET" and s.path.startswith("/blobs/")]
    assert cdn == [None, "bytes=131072-"]


def test_two_workers_download_once_and_both_see_progress(hub, tiny_model_dir):
    hub.rate = 800_000
    heard: dict[str, list[Transfer]] = {"a": [], "b": []}
    folders: dict[str, Path] = {}

    def worker(name: str) -> None:
        folders[name] = ensure_snapshot(REPO, on_progress=heard[name].append)

    threads = [threading.Thread(target=worker, args=(name,)) for name in heard]
    for thread in threads:
        thread.start()
        time.sleep(0.1)  # "a" takes the lock; "b" waits for it
    for thread in threads:
        thread.join(30)
    assert folders["a"] == folders["b"]
    for filename in ("config.json", "tokenizer.json"):
        assert len(hub.served(filename)) == 1
    assert len([s for s in hub.requests if s.path.startswith("/blobs/")]) == 1
    relayed = [r for r in heard["b"] if 0 < r.done < r.total]
    assert relayed, "the waiting worker heard nothing of the download"


def test_a_gguf_file_from_the_hub(hub):
    hub.add("someone/model-GGUF", {"model.Q4_0.gguf": b"GGUF" + bytes(5000), "README.md": b"r"})
    path = gguf_file(ModelSource("gguf", "someone/model-GGUF:model.Q4_0.gguf"))
    assert path.read_bytes() == b"GGUF" + bytes(5000)
    assert gguf_file("someone/model-GGUF:model.Q4_0.gguf") == path  # now from the cache
    with pytest.raises(
        SourceError, match=r"has no file 'model.Q8.gguf'; its .gguf files: model.Q4_0"
    ):
        gguf_file("someone/model-GGUF:model.Q8.gguf")


def test_a_repo_without_config_points_at_its_gguf_files(hub):
    hub.add("someone/only-GGUF", {"m.Q4_0.gguf": b"GGUF"})
    with pytest.raises(
        SourceError, match=r"not a transformers model; .*gguf: someone/only-GGUF:m.Q4_0"
    ):
        ensure_snapshot("someone/only-GGUF")


# -- choosing files (no server) --------------------------------------------------------------


def no_index(name: str) -> object:
    raise AssertionError(f"read {name} unexpectedly")


def test_select_takes_the_shards_an_index_names_and_config_last():
    names = [
        "config.json",
        "tokenizer.json",
        "model.safetensors.index.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "consolidated.safetensors",
        "original/consolidated.00.pth",
    ]
    index = {
        "weight_map": {
            "a": "model-00001-of-00002.safetensors",
            "b": "model-00002-of-00002.safetensors",
        }
    }
    chosen = select_files("o/r", names, lambda name: index)
    assert chosen == [
        "model.safetensors.index.json",
        "tokenizer.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "config.json",
    ]


def test_select_falls_back_to_pytorch_bin_and_refuses_a_repo_without_weights():
    assert select_files("o/r", ["config.json", "vocab.json", "pytorch_model.bin"], no_index) == [
        "vocab.json",
        "pytorch_model.bin",
        "config.json",
    ]
    with pytest.raises(SourceError, match=r"o/r has no weights jupyter_llm can load"):
        select_files("o/r", ["config.json", "tokenizer.json", "model.onnx"], no_index)


def test_an_index_naming_absent_files_is_refused():
    index = {"weight_map": {"a": "model-1.safetensors"}}
    with pytest.raises(SourceError, match=r"names files the repo lacks: \['model-1.safetensors'\]"):
        select_files("o/r", ["config.json", "model.safetensors.index.json"], lambda name: index)


def test_completeness_needs_every_shard(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "tokenizer.json").write_text("{}")
    index = {"weight_map": {"a": "m-1.safetensors", "b": "m-2.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    (tmp_path / "m-1.safetensors").write_bytes(b"1")
    assert not is_complete(tmp_path)
    (tmp_path / "m-2.safetensors").write_bytes(b"2")
    assert is_complete(tmp_path)


def test_the_hub_module_does_not_import_torch():
    code = (
        "import sys, jupyter_llm.sources.hub, jupyter_llm.sources.resolve; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
