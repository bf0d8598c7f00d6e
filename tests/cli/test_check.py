from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from jupyter_llm.cli import main


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = main(["check", *argv])
    return code, capsys.readouterr().out.splitlines()


def test_every_fault_is_printed_not_only_the_first(tmp_path, capsys):
    path = write(
        tmp_path,
        """
        parking_lot:
          limits: {max_unit: 3, timeout_secs: -1}
        models:
          - name: a
            hf_id: Qwen/Qwen2.5-0.5B-Instruct
            params: {block_size: 0}
          - name: b
            local_path: weights
            revision: main
          - name: a
            backend: fake
          - name: c
            local_path: nowhere
          - name: d
            backend: fake
        """,
    )
    code, lines = run(capsys, str(path))
    assert code == 1
    assert lines == [
        f"fault: {path}: parking_lot.limits.max_unit: unknown key 'max_unit'; expected one of: "
        "max_units, max_queue_depth, timeout_secs, max_running_per_user, max_queued_per_user; "
        "did you mean 'max_units'?",
        f"fault: {path}: parking_lot.limits.timeout_secs: expected a number above 0, got -1",
        f"fault: {path}: models[0].params.block_size: expected an integer of at least 1, got 0",
        f"fault: {path}: models[1].revision: revision applies to files from the Hugging Face "
        f"Hub (hf_id, or gguf: owner/repo:file.gguf); this model's source is local_path: weights",
        f"fault: {path}: models[2].name: duplicate model name 'a'; models[0] already uses it",
        f"fault: c: files: no folder {tmp_path / 'nowhere'}",
        "  d: files: none (nothing is loaded locally)",
        "6 fault(s)",
    ]


def test_a_valid_file_reports_each_models_files(tmp_path, capsys, model_dir, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    path = write(
        tmp_path,
        f"""
        models:
          - {{name: tiny, local_path: {model_dir}}}
          - {{name: qwen, hf_id: Qwen/Qwen2.5-0.5B-Instruct}}
        """,
    )
    code, lines = run(capsys, str(path))
    assert code == 0
    assert lines[0] == f"{path}: valid, 2 model(s)"
    assert lines[1] == f"  tiny: files: {model_dir} (307.2 kB)"
    assert lines[2] == "  qwen: files: not downloaded yet (on first use, or jupyter llm pull)"
    assert lines[3] == "no faults"


def test_a_model_that_cannot_be_fetched_is_a_fault(tmp_path, capsys, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    path = write(tmp_path, "models:\n  - {name: qwen, hf_id: Qwen/Qwen2.5-0.5B-Instruct}\n")
    code, lines = run(capsys, str(path))
    assert code == 1
    assert "fault: qwen: files: not downloaded, and HF_HUB_OFFLINE is set" in lines[1]


def test_a_file_that_is_not_yaml_is_one_fault(tmp_path, capsys):
    path = write(tmp_path, "models: [unclosed\n")
    code, lines = run(capsys, str(path))
    assert code == 1
    assert (
        lines[0].startswith(f"fault: {path}: invalid YAML at line 2") and lines[-1] == "1 fault(s)"
    )


def test_a_missing_file_is_an_error(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope.yaml")]) == 1
    assert "nope.yaml: no such file" in capsys.readouterr().err
