"""What %llm models shows of a model that is still loading."""

from __future__ import annotations

from jupyter_llm.kernel.reports import loading_text, models_report, precision_text


def test_a_phase_reads_with_its_seconds_and_numbers() -> None:
    assert loading_text({"phase": "converting GGUF", "seconds": 12.3}) == "converting GGUF, 12 s"
    download = {
        "phase": "downloading",
        "seconds": 3.0,
        "done": 12_500_000,
        "total": 270_000_000,
        "unit": "bytes",
        "rate": 8_100_000,
    }
    assert loading_text(download) == "downloading 12.5/270.0 MB at 8.1 MB/s, 3 s"
    steps = {"phase": "compiling", "seconds": 40, "done": 3, "total": 30, "unit": "graphs"}
    assert loading_text(steps) == "compiling 3/30 graphs, 40 s"


def test_the_models_table_says_what_a_loading_model_does() -> None:
    loading = {"phase": "converting GGUF", "seconds": 12.0, "detail": "/cache/smollm2"}
    models = [
        {
            "name": "smollm2",
            "state": "loading",
            "backend": "transformers",
            "loading": loading,
            "workers": [{"state": "starting", "loading": loading}],
        },
        {"name": "fake", "state": "ready", "backend": "fake", "loading": None, "workers": []},
    ]
    text = models_report(models)["text/plain"]
    assert "loading: converting GGUF, 12 s (/cache/smollm2)" in text
    assert "0/1" in text


def test_the_models_table_shows_each_workers_precision() -> None:
    packed = {"state": "ready", "dtype": "bfloat16", "matmul": "oneDNN packed"}
    plain = {"state": "ready", "dtype": "float32", "matmul": "unpacked"}
    assert precision_text([packed, packed]) == "bfloat16, oneDNN packed"
    assert precision_text([packed, plain]) == "bfloat16, oneDNN packed; float32, unpacked"
    assert precision_text([{"state": "ready"}]) == "-"  # a remote model computes nothing here
    models = [{"name": "a", "state": "ready", "backend": "transformers", "workers": [packed]}]
    header, row = models_report(models)["text/plain"].splitlines()
    assert header.split() == [
        "model",
        "state",
        "backend",
        "device",
        "precision",
        "workers",
        "units",
    ]
    assert "bfloat16, oneDNN packed  1/1" in row
