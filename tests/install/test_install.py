"""`rlm-mcp install <host>`: each host's file at its place on macOS, Windows and Linux, merged with the servers
already there, idempotent, backed up, and a file that does not parse refused and left byte for byte.

The plain functions are tested with a temporary HOME and every platform's path computed on this machine
(`Where`); the command itself runs as a subprocess, as a user runs it.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import tomllib
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

from rlm_mcp.cli import INSTALL_HOSTS
from rlm_mcp.install import HOSTS, SERVER_NAME, InstallError, Where, config_path, install, install_links
from tests.helpers import REPO, server_command

MAC_HOME = PurePosixPath("/Users/ada")
WIN_HOME = PureWindowsPath("C:/Users/ada")
LINUX_HOME = PurePosixPath("/home/ada")
WIN_ENV = {"APPDATA": r"C:\Users\ada\AppData\Roaming"}

EXPECTED = {  # (host, platform) -> the file, as each host documents it
    ("claude-desktop", "darwin"): "/Users/ada/Library/Application Support/Claude/claude_desktop_config.json",
    ("claude-desktop", "win32"): r"C:\Users\ada\AppData\Roaming\Claude\claude_desktop_config.json",
    ("claude-desktop", "linux"): "/home/ada/.config/Claude/claude_desktop_config.json",
    ("claude-code", "darwin"): "/Users/ada/.claude.json",
    ("claude-code", "win32"): r"C:\Users\ada\.claude.json",
    ("claude-code", "linux"): "/home/ada/.claude.json",
    ("cursor", "darwin"): "/Users/ada/.cursor/mcp.json",
    ("cursor", "win32"): r"C:\Users\ada\.cursor\mcp.json",
    ("cursor", "linux"): "/home/ada/.cursor/mcp.json",
    ("vscode", "darwin"): "/Users/ada/Library/Application Support/Code/User/mcp.json",
    ("vscode", "win32"): r"C:\Users\ada\AppData\Roaming\Code\User\mcp.json",
    ("vscode", "linux"): "/home/ada/.config/Code/User/mcp.json",
    ("codex", "darwin"): "/Users/ada/.codex/config.toml",
    ("codex", "win32"): r"C:\Users\ada\.codex\config.toml",
    ("codex", "linux"): "/home/ada/.codex/config.toml",
    ("gemini-cli", "darwin"): "/Users/ada/.gemini/settings.json",
    ("gemini-cli", "win32"): r"C:\Users\ada\.gemini\settings.json",
    ("gemini-cli", "linux"): "/home/ada/.gemini/settings.json",
}
WHERE = {"darwin": Where("darwin", MAC_HOME), "win32": Where("win32", WIN_HOME, WIN_ENV),
         "linux": Where("linux", LINUX_HOME)}

# A configuration with someone else's server and settings in it, per host, and a broken one.
OTHER = {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv"]}
EXISTING_TOML = """# my Codex settings
model = "o3"  # the model I like

[mcp_servers.fs]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem", "/srv"]
"""
BROKEN = {"json": b'{\n  "mcpServers": {\n    "fs": {"command": "npx"},\n  }\n}\n',  # a trailing comma
          "toml": b'model = "o3"\n[mcp_servers.fs\ncommand = "npx"\n'}


def existing(host: str) -> bytes:
    if HOSTS[host].toml:
        return EXISTING_TOML.encode()
    return json.dumps({"theme": "dark", HOSTS[host].servers_key: {"fs": OTHER}}, indent=4).encode()


def servers_in(host: str, path: Path) -> dict:
    text = path.read_text()
    data = tomllib.loads(text) if HOSTS[host].toml else json.loads(text)
    return data[HOSTS[host].servers_key]


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.rlm-mcp-*.bak"))


@pytest.fixture
def home(tmp_path: Path) -> Where:
    (tmp_path / "home").mkdir()
    return Where("linux", tmp_path / "home")


def test_the_cli_names_every_host() -> None:
    assert list(INSTALL_HOSTS) == list(HOSTS)


@pytest.mark.parametrize(("host", "platform"), list(EXPECTED))
def test_each_host_file_at_its_place_per_platform(host: str, platform: str) -> None:
    assert str(HOSTS[host].locate(WHERE[platform])) == EXPECTED[(host, platform)]


def test_variables_that_move_a_host_file() -> None:
    linux = Where("linux", LINUX_HOME, {"XDG_CONFIG_HOME": "/xdg", "CODEX_HOME": "/codex",
                                        "CLAUDE_CONFIG_DIR": "/claude"})
    assert str(HOSTS["claude-desktop"].locate(linux)) == "/xdg/Claude/claude_desktop_config.json"
    assert str(HOSTS["vscode"].locate(linux)) == "/xdg/Code/User/mcp.json"
    assert str(HOSTS["codex"].locate(linux)) == "/codex/config.toml"
    assert str(HOSTS["claude-code"].locate(linux)) == "/claude/.claude.json"
    # %APPDATA% unset: Windows' default place under the profile
    assert str(HOSTS["vscode"].locate(Where("win32", WIN_HOME))) == r"C:\Users\ada\AppData\Roaming\Code\User\mcp.json"


@pytest.mark.parametrize("host", list(HOSTS))
def test_merged_with_the_servers_there_idempotent_and_backed_up(host: str, home: Where, tmp_path: Path) -> None:
    path = config_path(HOSTS[host], home)
    path.parent.mkdir(parents=True, exist_ok=True)
    before = existing(host)
    path.write_bytes(before)
    roots = [tmp_path / "src", tmp_path / "notes"]
    for root in roots:
        root.mkdir()

    message = install(host, roots, where=home)
    assert f"added rlm to {path}" in message
    servers = servers_in(host, path)
    assert servers["fs"] == OTHER  # someone else's server, untouched
    ours = servers[SERVER_NAME]
    assert Path(ours["command"]).is_absolute() and os.access(ours["command"], os.X_OK)
    assert ours["command"] == server_command()
    assert ours["args"] == ["serve"]
    assert ours["env"] == {"RLM_ALLOWED_ROOTS": os.pathsep.join(str(root) for root in roots)}
    if host == "codex":
        assert ours["required"] is True
        assert path.read_text().startswith(EXISTING_TOML)  # comments and layout kept (tomlkit)
    else:
        assert json.loads(path.read_text())["theme"] == "dark"
    [backup] = backups(path)
    assert backup.read_bytes() == before

    after = path.read_bytes()
    again = install(host, roots, where=home)
    assert "already" in again and "unchanged" in again
    assert path.read_bytes() == after and len(backups(path)) == 1  # nothing written the second time

    changed = install(host, roots[:1], where=home)
    assert f"updated rlm in {path}" in changed
    assert servers_in(host, path)[SERVER_NAME]["env"] == {"RLM_ALLOWED_ROOTS": str(roots[0])}
    assert servers_in(host, path)["fs"] == OTHER


@pytest.mark.parametrize("host", list(HOSTS))
def test_a_new_file_is_created(host: str, home: Where) -> None:
    path = config_path(HOSTS[host], home)
    install(host, [Path(home.home)], where=home)
    assert set(servers_in(host, path)) == {SERVER_NAME}
    assert backups(path) == []


@pytest.mark.parametrize("host", list(HOSTS))
def test_a_file_that_does_not_parse_is_refused_by_name_and_left_byte_for_byte(host: str, home: Where) -> None:
    path = config_path(HOSTS[host], home)
    path.parent.mkdir(parents=True, exist_ok=True)
    broken = BROKEN["toml" if HOSTS[host].toml else "json"]
    path.write_bytes(broken)
    for dry_run in (False, True):
        with pytest.raises(InstallError) as refused:
            install(host, [Path(home.home)], dry_run=dry_run, where=home)
        assert str(path) in str(refused.value) and "left as it is" in str(refused.value)
        assert '"RLM_ALLOWED_ROOTS"' in str(refused.value) or "RLM_ALLOWED_ROOTS =" in str(refused.value)
    assert path.read_bytes() == broken
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no backup, no temporary file


@pytest.mark.parametrize("content", ['["a list"]', '{"mcpServers": ["not", "a", "table"]}'])
def test_a_file_of_the_wrong_shape_is_refused(content: str, home: Where) -> None:
    path = config_path(HOSTS["cursor"], home)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(InstallError, match="left as it is"):
        install("cursor", [Path(home.home)], where=home)
    assert path.read_text() == content


def test_a_private_file_stays_private(home: Where) -> None:
    """~/.claude.json holds Claude Code's login state: 0600 before, 0600 after (and its backup too)."""
    path = config_path(HOSTS["claude-code"], home)
    path.write_text('{"oauthAccount": {"email": "ada@example.com"}}')
    path.chmod(0o600)
    install("claude-code", [Path(home.home)], where=home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(backups(path)[0].stat().st_mode) == 0o600
    assert json.loads(path.read_text())["oauthAccount"] == {"email": "ada@example.com"}


def run_install(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([server_command(), "install", *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env={"PATH": os.environ["PATH"], "HOME": str(home)})


def test_the_command_prints_without_writing_and_defaults_to_the_current_directory(tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "project"
    home.mkdir()
    project.mkdir()
    shown = run_install("cursor", "--print", home=home, cwd=project)
    assert shown.returncode == 0, shown.stderr
    path = home / ".cursor" / "mcp.json"
    assert f"would write {path}" in shown.stdout
    assert not path.exists()
    entry = json.loads(shown.stdout.split("\n", 1)[1])["mcpServers"][SERVER_NAME]
    assert entry["env"]["RLM_ALLOWED_ROOTS"] == str(project)

    written = run_install("cursor", home=home, cwd=project)
    assert written.returncode == 0, written.stderr
    assert json.loads(path.read_text())["mcpServers"][SERVER_NAME] == entry


def test_the_command_takes_repeated_roots_and_refuses_with_a_clear_message(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".gemini").mkdir(parents=True)
    completed = run_install("gemini-cli", "--root", str(tmp_path), "--root", str(home), home=home, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    entry = json.loads((home / ".gemini" / "settings.json").read_text())["mcpServers"][SERVER_NAME]
    assert entry["env"]["RLM_ALLOWED_ROOTS"] == f"{tmp_path}{os.pathsep}{home}"

    (home / ".gemini" / "settings.json").write_text("{oops")
    refused = run_install("gemini-cli", home=home, cwd=tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "settings.json (Gemini CLI's configuration) is not plain JSON" in refused.stderr
    missing = run_install("cursor", "--root", str(tmp_path / "nope"), home=home, cwd=tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


@pytest.mark.parametrize("page", ["README.md", "docs/install.md"])
def test_the_docs_carry_the_install_links(page: str) -> None:
    text = (REPO / page).read_text()
    for host, link in install_links().items():
        assert link in text, f"{page}'s {host} install link is out of date: {link}"


def test_a_symlinked_file_is_written_at_its_target(home: Where, tmp_path: Path) -> None:
    """Dotfiles kept in a repository: the link stays a link, the target gets the entry."""
    target = tmp_path / "dotfiles" / "gemini-settings.json"
    target.parent.mkdir()
    target.write_text(json.dumps({"mcpServers": {"fs": OTHER}}))
    path = config_path(HOSTS["gemini-cli"], home)
    path.parent.mkdir(parents=True)
    path.symlink_to(target)
    install("gemini-cli", [Path(home.home)], where=home)
    assert path.is_symlink() and path.resolve() == target
    assert set(json.loads(target.read_text())["mcpServers"]) == {"fs", SERVER_NAME}
    assert len(backups(target)) == 1


def test_backups_never_overwrite_each_other(home: Where, tmp_path: Path) -> None:
    path = config_path(HOSTS["cursor"], home)
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    for root in ("a", "b", "c"):  # three changes within the same second
        (tmp_path / root).mkdir()
        install("cursor", [tmp_path / root], where=home)
    assert len(backups(path)) == 3


def test_an_install_from_uvx_cache_is_warned_about(home: Where, monkeypatch: pytest.MonkeyPatch) -> None:
    """`uvx --from . rlm-mcp install ...` would write a path inside uv's cache, which uv may clean."""
    monkeypatch.setattr("sys.executable", "/home/ada/.cache/uv/archive-v0/Xa1b2/bin/python")
    message = install("cursor", [Path(home.home)], where=home)
    assert "Warning: this rlm-mcp runs from uv's cache" in message and "uv tool install" in message
