"""Worker calls through the assistant CLI the user already has: no API key needed.

A model string `claude-code/<model>`, `codex/<model>` or `gemini-cli/<model>` runs one process of that
CLI per call, in its headless mode with JSON output, the prompt on stdin. Each call is sealed off from
the user's set-up, because a nested assistant that loaded it would start the user's MCP servers -- this
one included -- on every call:
- every built-in tool of the assistant is off, and no MCP server, hook, plugin or extension of the
  user's settings is loaded (the flags per CLI are below, each with its reason);
- the working directory is a new, empty, private (0700) temporary directory, removed afterwards;
- no session is saved where the CLI lets us say so (claude `--no-session-persistence`, codex
  `--ephemeral`; gemini-cli has no such switch and records the chat under ~/.gemini/tmp/);
- the environment is built from an allow-list: HOME, PATH, locale, proxy and CA settings, and the
  CLI's own credentials and config-location variables. Nothing else of ours (no RLM_* setting, no
  other provider's key) and nothing of a parent assistant (CLAUDECODE, an IDE port) reaches it.
The process runs in its own process group; a timeout or a cancelled call kills the whole group, and
so does every finished call (a CLI's stray children die with it). Windows has no process groups to
signal (no `os.killpg`): there the CLI starts in a new console process group without a window
(`CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW`: a console flash per call from a GUI host such as Claude
Desktop, and Ctrl+C in the server's console reaching the CLI, are both avoided) and `taskkill /F /T`
ends the tree by parent process ids -- no psutil, nothing to install. Its one limit: children whose
leader has already exited have no parent left to find them by, so after a normal exit a stray child
may outlive the call there.

Errors, translated here into errors.py's at one boundary: the CLI's own message when it reports one
(`is_error`, `turn.failed`, `error`), else its exit code and last stderr lines; a missing executable
names the npm package to install; an authentication problem says how to log in; a prompt too long for
the model is `ContextWindowExceeded`. Retries are left to
the dispatcher and happen only for transient failures: timeouts, and errors that name an overload,
a rate limit or a 5xx status.

A root model's conversation goes as one prompt per call (`as_one_prompt`), a fresh process each
time; CLIs take no tools, so the root reads fenced code blocks from their answers.

Cost: claude reports `total_cost_usd`; codex and gemini-cli report tokens only, priced by usage.py
when it knows the model (else unknown, never zero). For a subscription
this is what the same tokens would cost at API prices -- nothing is billed per call, but the USD
budget still bounds a runaway loop. CLIs take no output-token cap, so `max_tokens` is not sent.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import ByteReceiveStream, Process

from ..errors import raising_ours
from .errors import ContextWindowExceeded, WorkerCallFailed, WorkerTimeout
from .protocol import RETRYABLE_STATUS, Message, ModelRequest, ModelResponse
from .usage import cost_of

MAX_OUTPUT_BYTES = 16 * 1024 * 1024  # per stream, checked while reading: a CLI that floods is stopped
WORKER_SYSTEM_PROMPT = (
    "You are a worker model called by a program, not a chat assistant. You have no tools and no files: "
    "everything you need is in the message. Answer it directly and completely, in plain text, without preamble."
)
# Read by every CLI: where home, config and temporary files are, the locale, proxies and CA bundles.
_COMMON_ENV = frozenset({
    "HOME", "PATH", "USER", "LOGNAME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
    "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR",
    "DBUS_SESSION_BUS_ADDRESS",  # the desktop keyring, where a CLI may keep its login
    "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "no_proxy", "all_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS",
})
_TRANSIENT = re.compile(r"overloaded|rate.?limit|too many requests|temporarily unavailable|\b(429|5\d\d)\b|"
                        r"ECONNRESET|ETIMEDOUT|socket hang up|stream disconnected|connection failed", re.IGNORECASE)
_AUTH = re.compile(r"log(ged)? ?in|auth|credential|api.?key|unauthori[sz]ed|\b401\b|\b403\b", re.IGNORECASE)
_CONTEXT_FULL = re.compile(r"prompt is too long|context (length|window)|too many tokens", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class CliAnswer:
    """What one CLI process said, read from its JSON: an answer, or its own error message."""

    text: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = None  # None: the CLI reported none
    error: str | None = None
    status: int | None = None  # an HTTP status the CLI reported with its error


@dataclass(frozen=True, slots=True)
class Invocation:
    argv: list[str]
    env: dict[str, str]


class CliFlavor:
    """One assistant CLI: how to run it sealed off, and how to read its JSON."""

    prefix: str  # the model-string prefix, e.g. "claude-code"
    executable: str  # looked up on PATH
    package: str  # the npm package that provides it
    login: str  # how a user logs in
    env_names: frozenset[str] = frozenset()  # its credentials and config-location variables
    env_prefixes: tuple[str, ...] = ()

    def invocation(self, executable: str, model: str, system: str, scratch: Path) -> Invocation:
        raise NotImplementedError

    def parse(self, stdout: bytes, stderr: bytes) -> CliAnswer | None:
        """The CLI's JSON read into an answer; None when there is none to read."""
        raise NotImplementedError

    def environment(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The allow-listed part of `environ`: never our settings, never a parent assistant's state."""
        return {name: value for name, value in environ.items()
                if name in _COMMON_ENV or name in self.env_names or name.startswith(self.env_prefixes)}

    def not_installed(self) -> str:
        return (f"`{self.executable}` is not on PATH, so {self.prefix}/ models cannot be called: install it with "
                f"`npm install -g {self.package}`, log in ({self.login}), and restart the server")


class ClaudeCode(CliFlavor):
    """`claude -p --output-format json`: one JSON object, `{"type": "result", "is_error", "result", ...}`."""

    prefix, executable, package = "claude-code", "claude", "@anthropic-ai/claude-code"
    login = "run `claude` once and type /login"
    env_names = frozenset({
        "CLAUDE_CODE_OAUTH_TOKEN", "CLAUDE_CONFIG_DIR", "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX",
        "CLAUDE_CODE_USE_FOUNDRY", "CLOUD_ML_REGION", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT",
    })
    env_prefixes = ("ANTHROPIC_", "AWS_")

    def invocation(self, executable: str, model: str, system: str, scratch: Path) -> Invocation:
        argv = [
            executable, "--print", "--output-format", "json", "--model", model,
            "--tools", "",  # no built-in tool at all
            "--strict-mcp-config", "--mcp-config", '{"mcpServers": {}}',  # no MCP server from any config
            "--setting-sources", "",  # no user, project or local settings: their hooks and plugins stay off
            "--disable-slash-commands",  # no skills or custom commands
            "--no-session-persistence",  # nothing saved to resume
            "--system-prompt", system,  # instead of the coding agent's long prompt
        ]
        # No telemetry, error reports or update check from a process that lives for one answer.
        return Invocation(argv, {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"})

    def parse(self, stdout: bytes, stderr: bytes) -> CliAnswer | None:
        data = _json_object(stdout, lambda d: d.get("type") == "result")
        if data is None:
            return None
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        tokens_in = sum(_int(usage.get(key)) for key in
                        ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
        cost = data.get("total_cost_usd")
        cost = float(cost) if isinstance(cost, int | float) else None
        result = data.get("result")
        if data.get("is_error") or str(data.get("subtype", "success")) != "success":
            errors = data.get("errors") if isinstance(data.get("errors"), list) else []
            message = result if isinstance(result, str) and result else "; ".join(map(str, errors))
            status = data.get("api_error_status")
            return CliAnswer(error=message or str(data.get("subtype") or "is_error"), cost_usd=cost,
                             status=status if isinstance(status, int) else None)
        return CliAnswer(text=result if isinstance(result, str) else "", tokens_in=tokens_in,
                         tokens_out=_int(usage.get("output_tokens")), cost_usd=cost)


class Codex(CliFlavor):
    """`codex exec --json`: JSON lines; the answer is the last `item.completed` of type `agent_message`,
    tokens come with `turn.completed`, failures as `turn.failed` or `error`."""

    prefix, executable, package = "codex", "codex", "@openai/codex"
    login = "run `codex login`"
    env_names = frozenset({"OPENAI_API_KEY", "OPENAI_BASE_URL", "CODEX_API_KEY", "CODEX_HOME"})

    def invocation(self, executable: str, model: str, system: str, scratch: Path) -> Invocation:
        argv = [
            executable, "exec", "--json", "--model", model,
            "--ephemeral",  # no session files
            "--skip-git-repo-check",  # the working directory is an empty temporary one
            "--ignore-user-config",  # no config.toml: none of its MCP servers, profiles or hooks (auth still works)
            "--sandbox", "read-only",
            "-c", "features.shell_tool=false",  # no shell tool
            "-c", 'web_search="disabled"',
            "-c", f"developer_instructions={json.dumps(system)}",  # a JSON string is a TOML basic string
            "-",  # the prompt comes on stdin
        ]
        return Invocation(argv, {})

    def parse(self, stdout: bytes, stderr: bytes) -> CliAnswer | None:
        text, usage, error, seen = "", None, None, False
        for event in _json_lines(stdout):
            seen = True
            kind = event.get("type")
            item = event.get("item") if isinstance(event.get("item"), dict) else {}
            if kind == "item.completed" and item.get("type") == "agent_message":
                text = str(item.get("text") or "")
            elif kind == "turn.completed" and isinstance(event.get("usage"), dict):
                usage = event["usage"]
            elif kind == "turn.failed":
                error = _message(event.get("error")) or "turn failed"
            elif kind == "error":
                error = _message(event) or "error"
        if not seen:
            return None
        if error is not None and usage is None:
            return CliAnswer(error=error)
        usage = usage or {}
        return CliAnswer(text=text, tokens_in=_int(usage.get("input_tokens")),
                         tokens_out=_int(usage.get("output_tokens")))


class GeminiCli(CliFlavor):
    """`gemini --output-format json`: one (pretty-printed) JSON object `{"response", "stats", "error"?}`;
    a failure may come on stderr in the same shape."""

    prefix, executable, package = "gemini-cli", "gemini", "@google/gemini-cli"
    login = "run `gemini` once and choose a login method, or set GEMINI_API_KEY"
    env_names = frozenset({
        "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION",
        "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_USE_GCA", "GOOGLE_APPLICATION_CREDENTIALS", "GEMINI_CLI_HOME",
        "GEMINI_CLI_SYSTEM_SETTINGS_PATH", "GEMINI_CLI_SYSTEM_DEFAULTS_PATH",  # the administrator's settings
    })
    NO_SERVER = "rlm-worker-no-mcp-server"  # an allow-list of one name nobody uses: no MCP server starts

    def invocation(self, executable: str, model: str, system: str, scratch: Path) -> Invocation:
        (scratch / "deny-all.toml").write_text(  # a deny rule also hides the tools from the model
            '[[rule]]\ntoolName = "*"\ndecision = "deny"\npriority = 999\n')
        (scratch / "system.md").write_text(system)
        # Workspace settings of the empty working directory: they outrank the user's, and switch hooks off.
        settings_dir = scratch / "work" / ".gemini"
        settings_dir.mkdir(parents=True)
        (settings_dir / "settings.json").write_text(json.dumps({"hooksConfig": {"enabled": False}}))
        argv = [
            executable, "--output-format", "json", "--model", model,
            "--prompt", "",  # headless; the prompt itself comes on stdin
            "--extensions", "none",
            "--allowed-mcp-server-names", self.NO_SERVER,
            "--policy", str(scratch / "deny-all.toml"),
        ]
        env = {"GEMINI_SYSTEM_MD": str(scratch / "system.md"),  # replaces the built-in system prompt
               "GEMINI_CLI_TRUST_WORKSPACE": "true"}  # so the workspace settings above apply
        return Invocation(argv, env)

    def parse(self, stdout: bytes, stderr: bytes) -> CliAnswer | None:
        data = _json_object(stdout, lambda d: "response" in d or "error" in d)
        data = data if data is not None else _json_object(stderr, lambda d: "error" in d)
        if data is None:
            return None
        if data.get("error"):
            code = data["error"].get("code") if isinstance(data["error"], dict) else None
            http = code if isinstance(code, int) and 400 <= code < 600 else None  # else it is the exit code
            return CliAnswer(error=_message(data["error"]) or "error", status=http)
        tokens_in = tokens_out = 0
        models = (data.get("stats") or {}).get("models") if isinstance(data.get("stats"), dict) else None
        for stats in (models or {}).values():
            tokens = stats.get("tokens") if isinstance(stats, dict) else None
            if isinstance(tokens, dict):
                tokens_in += _int(tokens.get("prompt"))
                tokens_out += _int(tokens.get("candidates")) + _int(tokens.get("thoughts"))
        return CliAnswer(text=str(data.get("response") or ""), tokens_in=tokens_in, tokens_out=tokens_out)


FLAVORS: dict[str, CliFlavor] = {flavor.prefix: flavor for flavor in (ClaudeCode(), Codex(), GeminiCli())}


def cli_flavor(model: str | None) -> CliFlavor | None:
    """The CLI a model string names (`claude-code/haiku` -> claude), or None for every other model."""
    prefix = (model or "").split("/", 1)[0]
    return FLAVORS.get(prefix) if model and "/" in model else None


def setup_fix(model: str | None) -> str | None:
    """How to make a CLI model's calls work -- log in, or install the CLI -- for `doctor`; None for others."""
    flavor = cli_flavor(model)
    if flavor is None:
        return None
    return f"{flavor.login}; if `{flavor.executable}` is not installed: npm install -g {flavor.package}"


class CliBackend:
    """`ModelBackend` for `claude-code/`, `codex/` and `gemini-cli/` models: one sealed-off process per call.

    `environ` is where the CLI's environment is picked from (the server's own by default).
    """

    name = "assistant-cli"
    process_per_call = True
    loads_litellm = False

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = environ

    def supports_tools(self, model: str) -> bool:
        return False  # an assistant CLI takes text only: the root reads fenced code blocks

    async def aclose(self) -> None:
        """Every call's process is gone when the call returns: nothing to close."""

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """A worker's prompt goes as it is, under the worker system prompt; a conversation as one prompt."""
        prompt = request.single_prompt
        system, prompt = (WORKER_SYSTEM_PROMPT, prompt) if prompt is not None else as_one_prompt(request.messages)
        model, timeout_s = request.model, request.timeout_s
        flavor = cli_flavor(model)
        if flavor is None:
            raise WorkerCallFailed(f"model {model!r} is not an assistant-CLI model: this backend runs "
                                   f"{', '.join(p + '/<model>' for p in FLAVORS)}")
        name = model.split("/", 1)[1]
        if not name:
            raise WorkerCallFailed(f"{model!r} names no model: write e.g. {flavor.prefix}/<model>")
        environ = os.environ if self.environ is None else self.environ
        executable = shutil.which(flavor.executable, path=environ.get("PATH"))
        if executable is None:
            raise WorkerCallFailed(flavor.not_installed())
        with tempfile.TemporaryDirectory(prefix="rlm-cli-") as scratch_name:
            scratch = Path(scratch_name)
            (scratch / "work").mkdir(mode=0o700)
            invocation = flavor.invocation(executable, name, system, scratch)
            env = flavor.environment(environ) | {"NO_COLOR": "1"} | invocation.env
            code, stdout, stderr = await _run(invocation.argv, prompt.encode(), env, scratch / "work", timeout_s,
                                              flavor.executable)
        answer = flavor.parse(stdout, stderr)
        if answer is None or answer.error is not None:
            raise _failure(flavor, code, answer, stderr, stdout)
        cost = answer.cost_usd
        if cost is None:
            cost = await cost_of(name, answer.tokens_in, answer.tokens_out)
        return ModelResponse(text=answer.text, model=model, tokens_in=answer.tokens_in,
                             tokens_out=answer.tokens_out, cost_usd=cost, backend=self.name)


def as_one_prompt(messages: tuple[Message, ...] | list[Message]) -> tuple[str, str]:
    """A chat as (system prompt, one prompt) for a CLI that takes a single message per process: each
    turn is marked with its role, and the model is asked for the assistant's next turn."""
    system = "\n\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "system")
    turns = [f"[{m.get('role', 'user')}]\n{m.get('content') or ''}" for m in messages if m.get("role") != "system"]
    prompt = ("The conversation so far, oldest turn first. Write the assistant's next turn only.\n\n"
              + "\n\n".join(turns))
    return system or WORKER_SYSTEM_PROMPT, prompt


async def _run(argv: list[str], stdin: bytes, env: dict[str, str], cwd: Path, timeout_s: float,
               what: str) -> tuple[int, bytes, bytes]:
    """Run to completion in a new process group; the group is killed on a timeout, on cancellation, and
    after a normal exit too (a CLI's stray children, such as a server it started, die with it)."""
    try:
        process = await anyio.open_process(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, cwd=cwd, env=env, **_OWN_GROUP)
    except OSError as exc:  # removed or made non-executable since it was found on PATH
        raise WorkerCallFailed(f"`{what}` could not be started: {exc}") from exc
    output: dict[str, bytes] = {}
    try:
        with anyio.fail_after(timeout_s):
            with raising_ours():  # a flood's error leaves the task group bare, not in an exception group
                async with anyio.create_task_group() as group:
                    group.start_soon(_feed, process, stdin)
                    assert process.stdout is not None and process.stderr is not None
                    group.start_soon(_collect, process.stdout, output, "stdout", what)
                    group.start_soon(_collect, process.stderr, output, "stderr", what)
            code = await process.wait()
    except TimeoutError as exc:
        raise WorkerTimeout(timeout_s) from exc
    finally:
        await _kill_group(process)
    return code, output.get("stdout", b""), output.get("stderr", b"")


async def _feed(process: Process, data: bytes) -> None:
    assert process.stdin is not None
    try:
        await process.stdin.send(data)
        await process.stdin.aclose()
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, BrokenPipeError, ConnectionResetError):
        pass  # it exited without reading its prompt: its output says why


async def _collect(stream: ByteReceiveStream, output: dict[str, bytes], key: str, what: str) -> None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > MAX_OUTPUT_BYTES:
            raise WorkerCallFailed(f"`{what}` wrote more than {MAX_OUTPUT_BYTES // 2**20} MiB on {key}: stopped")
        chunks.append(chunk)
    output[key] = b"".join(chunks)


# How a CLI process starts in a group of its own, and a helper without a console window (module docstring).
_NO_WINDOW: dict[str, Any] = {"creationflags": subprocess.CREATE_NO_WINDOW} if sys.platform == "win32" else {}
_OWN_GROUP: dict[str, Any] = (
    {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW}
    if sys.platform == "win32" else {"start_new_session": True}
)
TASKKILL_TIMEOUT_S = 10


async def _kill_group(process: Process) -> None:
    """End the CLI's whole process tree, then reap the leader; safe when everything has exited. With
    process groups (POSIX): SIGKILL to the group. Without (Windows): `taskkill /F /T` on the leader's
    tree, or, where even taskkill is missing, the leader alone."""
    with anyio.CancelScope(shield=True):
        if hasattr(os, "killpg"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        elif process.returncode is None:
            await _kill_tree_without_groups(process)
        await process.wait()
        await process.aclose()


async def _kill_tree_without_groups(process: Process) -> None:
    taskkill = shutil.which("taskkill")
    if taskkill is not None:
        with contextlib.suppress(OSError), anyio.move_on_after(TASKKILL_TIMEOUT_S):
            await anyio.run_process([taskkill, "/F", "/T", "/PID", str(process.pid)], check=False, **_NO_WINDOW)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        process.kill()


def _failure(flavor: CliFlavor, code: int, answer: CliAnswer | None, stderr: bytes,
             stdout: bytes) -> WorkerCallFailed:
    """The call's error, carrying the CLI's own words, with a fix where one is known."""
    if answer is not None and answer.error is not None:
        message, status = _one_line(answer.error), answer.status
    elif code != 0:
        said = _tail(stderr) or _tail(stdout)
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        message, status = f"{how}" + (f": {said}" if said else ""), None
    else:
        return WorkerCallFailed(f"{flavor.executable} ({flavor.prefix}) answered with no JSON this backend can "
                                f"read (is it an old version?): {_tail(stdout) or '(no output)'}")
    text = f"{flavor.executable} ({flavor.prefix}): {message}"
    if _CONTEXT_FULL.search(message):
        return ContextWindowExceeded(text, status=status)
    if _AUTH.search(message):
        text += f" -- to fix: {flavor.login}"
    transient = status in RETRYABLE_STATUS or (status is None and bool(_TRANSIENT.search(message)))
    return WorkerCallFailed(text, status=status, retryable=transient)


def _json_object(raw: bytes, wanted: Any) -> dict[str, Any] | None:
    """The whole output as one JSON object, else the last line that is one; only if `wanted(obj)`."""
    text = raw.decode("utf-8", "replace").strip()
    candidates = [text, *reversed(text.splitlines())] if text else []
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict) and wanted(data):
            return data
    return None


def _json_lines(raw: bytes) -> list[dict[str, Any]]:
    events = []
    for line in raw.decode("utf-8", "replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a warning line among the events
        if isinstance(event, dict):
            events.append(event)
    return events


def _message(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("message") or "")
    return str(value or "")


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


def _tail(raw: bytes, lines: int = 3) -> str:
    kept = [line for line in raw.decode("utf-8", "replace").splitlines() if line.strip()][-lines:]
    return _one_line(" | ".join(kept))


__all__ = ["FLAVORS", "WORKER_SYSTEM_PROMPT", "CliBackend", "as_one_prompt", "cli_flavor", "setup_fix"]
