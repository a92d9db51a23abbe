"""A damaged Pyodide cache (a cut download, a full disk): a session answers within seconds -- not after the
30 s start timeout -- naming the cache directory and `rlm-mcp doctor --fix`, which fetches it again; a cache
missing a file is fetched whole again by itself. Each test damages its own copy of the cache `./dev.sh setup`
fetched (Deno and the npm registry are real). (Issue 32; docs/faults.md's table.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rlm_mcp.config import Settings, load_settings
from rlm_mcp.doctor import check_wasm
from rlm_mcp.sandbox import PyodideCache, SandboxPolicy
from tests.helpers import stdio_client, tool_error
from tests.server.test_faults import half_written

VERSION = SandboxPolicy.load().wasm.pyodide_version


def damaged_cache(home: Path, file: str, damage: str) -> Path:
    """RLM_HOME `home` with a copy of the shared Pyodide cache whose `file` is cut in half ("cut") or gone;
    the package directory."""
    shared = PyodideCache(Settings().home / "wasm", VERSION)
    assert shared.find() is not None, "Pyodide is not cached: run ./dev.sh setup"
    shutil.copytree(shared.deno_dir / "npm", home / "wasm" / "deno" / "npm", symlinks=True)
    [package] = (home / "wasm" / "deno" / "npm").glob(f"*/pyodide/{VERSION}")
    target = package / file
    if damage == "cut":
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    else:
        target.unlink()
    return package


@pytest.mark.anyio
async def test_a_cut_pyodide_is_named_at_once_with_its_fix(server_env: dict[str, str]) -> None:
    home = Path(server_env["RLM_HOME"])
    damaged_cache(home, "pyodide.asm.wasm", "cut")
    async with stdio_client({**server_env, "RLM_SANDBOX": "wasm"}) as client:
        for _ in range(2):  # the next call tries again, and is told again
            message = await tool_error(client, "exec_code", {"code": "print(1)"})
            assert "not ready in time" not in message, message  # the guest's compile error ended the start
            assert "pyodide.asm.wasm did not compile" in message
            assert f"Pyodide's files in {home / 'wasm' / 'deno'} are damaged" in message
            assert "run `rlm-mcp doctor --fix`: it fetches them again" in message
            assert "bug" not in message
        tools = await client.list_tools()  # the server goes on
        assert "exec_code" in {tool.name for tool in tools.tools}
    assert not half_written(home / "store")


def test_a_cache_missing_a_file_is_fetched_whole_again(tmp_path: Path) -> None:
    """Deno calls a package cached while its directory is there, and would fetch nothing."""
    package = damaged_cache(tmp_path, "python_stdlib.zip", "gone")
    cache = PyodideCache(tmp_path / "wasm", VERSION)
    assert cache.find() is None
    assert cache.ensure() == package.resolve()
    assert (package / "python_stdlib.zip").is_file()


def test_doctor_fix_fetches_a_damaged_cache_again(tmp_path: Path, runtime_dir: Path) -> None:
    package = damaged_cache(tmp_path / "home", "pyodide.asm.wasm", "cut")
    settings = load_settings(flags={"home": tmp_path / "home", "runtime_dir": runtime_dir}, environ={})
    broken = check_wasm(settings)
    assert broken.status == "fail" and "did not compile" in broken.detail
    fixed = check_wasm(settings, fetch=True)
    assert fixed.status != "fail", fixed
    assert fixed.detail.startswith("Pyodide's cached files did not start; fetched again: ")
    assert "ran code" in fixed.detail
    assert (package / "pyodide.asm.wasm").stat().st_size > 2 * (package / "python_stdlib.zip").stat().st_size
    assert not list(package.parent.glob(".*damaged"))
