"""`rlm-mcp install <host>`: add rlm-mcp to a host's own MCP configuration file, where that host reads it.

Each host keeps its servers in a file of its own, in a place that depends on the platform (HOSTS below).
Installing reads that file, adds or updates one entry named `rlm` and writes the file back:
- the other servers and every other setting stay as they were (JSON keeps its key order; Codex's TOML
  is edited with tomlkit, which keeps the user's comments and layout -- the standard library's tomllib only
  reads, and a plain writer such as tomli-w would drop every comment of a file people edit by hand);
- a second run with the same roots changes nothing and writes nothing (idempotent);
- before a file is changed, its old bytes are copied next to it (`<name>.rlm-mcp-<time>.bak`), and the new
  text goes to a temporary file first, so a crash never leaves half a file;
- a file that does not parse, or whose server table is not a table, is refused by name and left byte for
  byte as it was: we cannot merge what we cannot read, and rewriting it would lose the user's work.

The entry runs this installation's own `rlm-mcp` by its absolute path (GUI hosts such as Claude Desktop do
not see the shell's PATH) with `RLM_ALLOWED_ROOTS` set to the folders it may read.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Any, Literal

import tomlkit
import tomlkit.exceptions

from .errors import RlmMcpError

SERVER_NAME = "rlm"
Platform = Literal["darwin", "win32", "linux"]


class InstallError(RlmMcpError):
    """A host's configuration could not be updated; the message names the file and what to do."""


@dataclass(frozen=True, slots=True)
class ServerEntry:
    """What every host is told to run: the command, its arguments and its environment."""

    command: str
    args: tuple[str, ...] = ("serve",)
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Where:
    """The inputs of a host's configuration path: the platform, the home directory and the environment
    (APPDATA, XDG_CONFIG_HOME, CODEX_HOME, CLAUDE_CONFIG_DIR), so that every platform's path can be
    computed -- and tested -- on any machine."""

    platform: Platform
    home: PurePath
    environ: Mapping[str, str] = field(default_factory=dict)

    def path(self, value: str) -> PurePath:
        return PureWindowsPath(value) if self.platform == "win32" else PurePosixPath(value)

    def appdata(self) -> PurePath:
        """Windows' roaming application data (%APPDATA%)."""
        return self.path(self.environ["APPDATA"]) if self.environ.get("APPDATA") else \
            self.home / "AppData" / "Roaming"

    def xdg_config(self) -> PurePath:
        return self.path(self.environ["XDG_CONFIG_HOME"]) if self.environ.get("XDG_CONFIG_HOME") else \
            self.home / ".config"

    def app_support(self, app: str) -> PurePath:
        """Where a desktop application keeps its settings on this platform."""
        if self.platform == "darwin":
            return self.home / "Library" / "Application Support" / app
        return (self.appdata() if self.platform == "win32" else self.xdg_config()) / app


@dataclass(frozen=True, slots=True)
class Host:
    """One host: its name on the command line, where its configuration lives, and the entry it expects."""

    name: str
    title: str
    locate: Callable[[Where], PurePath]
    servers_key: str  # the table of servers: mcpServers, servers (VS Code), mcp_servers (Codex)
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys this host's entry needs besides ours
    then: str = ""  # what the user does next
    toml: bool = False  # Codex: TOML; every other host: JSON

    def entry(self, server: ServerEntry) -> dict[str, Any]:
        return {"command": server.command, "args": list(server.args), "env": dict(server.env), **self.extra}

    def snippet(self, server: ServerEntry) -> str:
        """The entry as the user would paste it into this host's file."""
        if self.toml:
            document = tomlkit.document()
            document[self.servers_key] = tomlkit.table(is_super_table=True)
            document[self.servers_key][SERVER_NAME] = _toml_table(self.entry(server))
            return tomlkit.dumps(document)
        return json.dumps({self.servers_key: {SERVER_NAME: self.entry(server)}}, indent=2) + "\n"


HOSTS: dict[str, Host] = {host.name: host for host in (
    Host("claude-desktop", "Claude Desktop",
         lambda w: w.app_support("Claude") / "claude_desktop_config.json", "mcpServers",
         then="Quit and reopen Claude Desktop; rlm appears under Settings > Developer."),
    # Claude Code's user scope: every project sees it. CLAUDE_CONFIG_DIR moves the whole file.
    Host("claude-code", "Claude Code",
         lambda w: (w.path(w.environ["CLAUDE_CONFIG_DIR"]) if w.environ.get("CLAUDE_CONFIG_DIR") else w.home)
         / ".claude.json", "mcpServers", {"type": "stdio"},
         then="Check it with `claude mcp list` (rlm ... Connected)."),
    Host("cursor", "Cursor", lambda w: w.home / ".cursor" / "mcp.json", "mcpServers",
         then="Cursor picks it up under Settings > MCP (reload the window if it does not)."),
    Host("vscode", "VS Code", lambda w: w.app_support("Code") / "User" / "mcp.json", "servers", {"type": "stdio"},
         then="In VS Code run `MCP: List Servers` and start rlm."),
    # Codex gives an optional server one second to start before a turn and silently leaves its tools out when
    # it misses that (README, Host setup): `required` makes it wait.
    Host("codex", "Codex", lambda w: (w.path(w.environ["CODEX_HOME"]) if w.environ.get("CODEX_HOME")
                                      else w.home / ".codex") / "config.toml", "mcp_servers", {"required": True},
         then="Check it with `codex mcp list`.", toml=True),
    Host("gemini-cli", "Gemini CLI", lambda w: w.home / ".gemini" / "settings.json", "mcpServers",
         then="Check it with `gemini mcp list`."),
)}


def this_platform() -> Platform:
    return "darwin" if sys.platform == "darwin" else "win32" if sys.platform == "win32" else "linux"


def rlm_mcp_command() -> list[str]:
    """This installation's `rlm-mcp`, absolute: the console script beside the running interpreter (a venv,
    pipx or `uv tool`), else the interpreter running the CLI module."""
    script = Path(sys.executable).with_name("rlm-mcp.exe" if os.name == "nt" else "rlm-mcp")
    if script.exists():
        return [str(script.absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "rlm_mcp.cli"]


def server_entry(roots: list[Path]) -> ServerEntry:
    """The entry for this installation, reading `roots` (resolved; the platform's path separator between them,
    as RLM_ALLOWED_ROOTS takes them)."""
    command, *prefix = rlm_mcp_command()
    allowed = os.pathsep.join(str(root.resolve()) for root in roots)
    return ServerEntry(command, (*prefix, "serve"), {"RLM_ALLOWED_ROOTS": allowed})


def _refuse(path: Path, host: Host, server: ServerEntry, why: str) -> InstallError:
    return InstallError(f"{path} ({host.title}'s configuration) {why}; it was left as it is. Fix or move it and "
                        f"run again, or add this entry to it by hand:\n{host.snippet(server)}")


def _merge_json(host: Host, path: Path, text: str, server: ServerEntry) -> tuple[str, bool, bool]:
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise _refuse(path, host, server, f"is not plain JSON ({exc.msg} at line {exc.lineno}, column "
                      f"{exc.colno}; comments and trailing commas count)") from exc
    if not isinstance(data, dict):
        raise _refuse(path, host, server, "does not hold a JSON object")
    servers = data.setdefault(host.servers_key, {})
    if not isinstance(servers, dict):
        raise _refuse(path, host, server, f"has a '{host.servers_key}' that is not an object")
    entry = host.entry(server)
    previous = servers.get(SERVER_NAME)
    if previous == entry:
        return text, False, False
    servers[SERVER_NAME] = entry
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n", True, previous is not None


def _toml_table(entry: dict[str, Any]) -> Any:
    """An entry as a TOML table, its environment inline (`env = { RLM_ALLOWED_ROOTS = "..." }`) as Codex's
    documentation writes it."""
    table = tomlkit.table()
    for key, value in entry.items():
        if isinstance(value, dict):
            inline = tomlkit.inline_table()
            inline.update(value)
            table[key] = inline
        else:
            table[key] = value
    return table


def _merge_toml(host: Host, path: Path, text: str, server: ServerEntry) -> tuple[str, bool, bool]:
    try:
        document = tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise _refuse(path, host, server, f"is not valid TOML ({exc})") from exc
    servers = document.get(host.servers_key)
    if servers is None:
        servers = tomlkit.table(is_super_table=True)
        document[host.servers_key] = servers
    elif not isinstance(servers, dict):
        raise _refuse(path, host, server, f"has a '{host.servers_key}' that is not a table")
    entry = host.entry(server)
    previous = servers.get(SERVER_NAME)
    if previous is not None and getattr(previous, "unwrap", lambda: previous)() == entry:
        return text, False, False
    servers[SERVER_NAME] = _toml_table(entry)
    return tomlkit.dumps(document), True, previous is not None


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of planning an install into one file."""

    host: Host
    path: Path
    before: bytes | None  # None: no file yet
    after: str
    changed: bool
    replaced: bool  # an older `rlm` entry was there


def plan(host: Host, path: Path, server: ServerEntry) -> Outcome:
    """What installing `server` into `path` would write, without writing anything. A symlinked file (dotfiles
    kept in a repository) is planned, and later written, at its target, so the link stays a link."""
    path = path.resolve() if path.is_symlink() else path
    before = path.read_bytes() if path.exists() else None
    if before is None:
        text = ""
    else:
        try:
            text = before.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise _refuse(path, host, server, "is not UTF-8 text") from exc
    merge = _merge_toml if host.toml else _merge_json
    after, changed, replaced = merge(host, path, text, server)
    return Outcome(host, path, before, after, changed, replaced)


def write(outcome: Outcome) -> Path | None:
    """Write a planned change: the old bytes to a backup first, then the new text through a temporary file
    renamed over the old one. Returns the backup's path (None when there was no file to back up)."""
    path = outcome.path
    path.parent.mkdir(parents=True, exist_ok=True)
    backup = _backup(path, outcome.before) if outcome.before is not None else None
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(outcome.after)
        if outcome.before is not None:
            shutil.copymode(path, temporary)  # ~/.claude.json holds a login: keep its 0600
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return backup


def _backup(path: Path, content: bytes) -> Path:
    """The old bytes in a new file beside `path`, created with its permissions (a 0600 file's copy is never
    readable by others, not even for a moment) and never over an earlier backup."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    mode = stat.S_IMODE(path.stat().st_mode)
    for attempt in range(100):
        backup = path.with_name(f"{path.name}.rlm-mcp-{stamp}{f'-{attempt}' if attempt else ''}.bak")
        try:
            descriptor = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            continue
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        return backup
    raise InstallError(f"could not back up {path}: 100 backups from {stamp} are already there; remove some")


def config_path(host: Host, where: Where | None = None) -> Path:
    """The host's configuration file on this machine."""
    where = where or Where(this_platform(), Path.home(), os.environ)
    return Path(host.locate(where))


def install(host_name: str, roots: list[Path], *, dry_run: bool = False, where: Where | None = None) -> str:
    """Install into one host (or, with `dry_run`, say what would be written); returns the message for the user."""
    host = HOSTS[host_name]
    path = config_path(host, where)
    outcome = plan(host, path, server_entry(roots or [Path.cwd()]))
    if dry_run:
        verb = "would write" if outcome.changed else "is already up to date, would write nothing to"
        return f"# rlm-mcp install {host.name} {verb} {path}:\n{outcome.after}"
    if not outcome.changed:
        return f"{host.title}: rlm is already in {path}, unchanged. {host.then}"
    backup = write(outcome)
    action = "updated rlm in" if outcome.replaced else "added rlm to"
    saved = f" (the previous file is saved as {backup.name})" if backup else ""
    return f"{host.title}: {action} {path}{saved}. {host.then}{_transient_warning()}"


def _transient_warning() -> str:
    """uvx runs a command from uv's cache, which uv may clean: an entry pointing there breaks later."""
    if "archive-v0" not in Path(sys.executable).parts:
        return ""
    return ("\nWarning: this rlm-mcp runs from uv's cache (uvx), which uv may clean. Install it to stay "
            "(`uv tool install .` or `pipx install .`) and run `rlm-mcp install` from there.")


def install_links(command: str = "rlm-mcp") -> dict[str, str]:
    """One-click install links for the README: Cursor's deeplink (the entry, base64 JSON) and VS Code's
    (through its https redirect, since GitHub renders no vscode: links). They run `command` from PATH;
    `rlm-mcp install cursor|vscode` writes the absolute path instead."""
    compact = (",", ":")
    cursor_config = base64.b64encode(json.dumps({"command": command, "args": ["serve"]},
                                                separators=compact).encode()).decode()
    vscode_config = json.dumps({"name": SERVER_NAME, "command": command, "args": ["serve"]}, separators=compact)
    return {
        "cursor": f"cursor://anysphere.cursor-deeplink/mcp/install?name={SERVER_NAME}&config={cursor_config}",
        "vscode": "https://insiders.vscode.dev/redirect?url="
                  + urllib.parse.quote(f"vscode:mcp/install?{urllib.parse.quote(vscode_config)}", safe=""),
    }
