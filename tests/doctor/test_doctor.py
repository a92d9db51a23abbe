"""`rlm-mcp doctor` on broken machines: every check reports its own failure with a fix, never a traceback,
and the exit code says whether isolated code can run here. Each case runs the real command, which
starts (or fails to start) a real nsjail."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from rlm_mcp.config import Settings, load_settings
from rlm_mcp.doctor import Check, check_wasm, guarded
from rlm_mcp.sandbox import PolicyError, PyodideCache, SandboxPolicy, WasmLauncher
from rlm_mcp.sandbox.snapshot import hash_seed, snapshot_key
from tests.helpers import server_command


def doctor(**env: str) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run([server_command(), "doctor"], capture_output=True, text=True, timeout=120,
                               env={**os.environ, "PYTHONHASHSEED": "4242", **env})  # one wasm snapshot for all
    assert "Traceback" not in completed.stdout + completed.stderr, completed.stdout + completed.stderr
    return completed


def line(output: str, name: str) -> tuple[str, str]:
    """The report line of check `name` and the fix printed under it ('' when none)."""
    lines = output.splitlines()
    index = next(i for i, text in enumerate(lines) if text[7:].startswith(f"{name}:"))
    fix = ""
    for text in lines[index + 1:]:  # a detail may span lines (a jail log); the fix closes the check
        if text.startswith(("[ok  ]", "[WARN]", "[FAIL]", "=>")):
            break
        if text.strip().startswith("fix:"):
            fix = text.strip()
    return lines[index], fix


def assert_cannot_isolate(completed: subprocess.CompletedProcess[str]) -> None:
    assert completed.returncode == 1
    assert "=> rlm-mcp CANNOT run isolated code on this machine" in completed.stdout
    assert line(completed.stdout, "jail")[0].startswith("[FAIL]")


@pytest.mark.slow  # out of the quick loop (./dev.sh quick)
def test_a_healthy_machine_exits_zero() -> None:
    completed = doctor()
    assert completed.returncode == 0, completed.stdout
    assert "=> rlm-mcp can run isolated code on this machine" in completed.stdout


def test_a_jail_that_cannot_start(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("[mounts]\nreadonly = []\n")  # no system libraries inside: the guest cannot be loaded
    completed = doctor(RLM_SANDBOX_POLICY=str(policy))
    assert_cannot_isolate(completed)
    report, fix = line(completed.stdout, "jail")
    assert "did not start" in report and "jail log" in completed.stdout
    assert "[mounts] readonly" in fix and "RLM_SANDBOX_POLICY" in fix


def test_a_bad_policy_file(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("[limits\ncpu_s = 5\n")
    completed = doctor(RLM_SANDBOX_POLICY=str(policy))
    assert_cannot_isolate(completed)
    report, fix = line(completed.stdout, "jail policy")
    assert report.startswith("[FAIL]") and "not valid TOML" in report
    assert str(policy) in fix and "unset RLM_SANDBOX_POLICY" in fix


def test_an_unusable_runtime_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    completed = doctor(RLM_RUNTIME_DIR=str(blocker / "runtime"))
    assert_cannot_isolate(completed)
    report, fix = line(completed.stdout, "runtime dir")
    assert report.startswith("[FAIL]") and "Not a directory" in report and "RLM_RUNTIME_DIR" in fix
    assert "RLM_RUNTIME_DIR" in line(completed.stdout, "jail")[1]


@pytest.mark.slow  # out of the quick loop (./dev.sh quick)
def test_a_missing_guest_interpreter(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-python3")
    completed = doctor(RLM_GUEST_PYTHON=missing, RLM_SANDBOX="nsjail")
    assert_cannot_isolate(completed)
    report, fix = line(completed.stdout, "guest python")
    assert report.startswith("[FAIL]") and "does not exist" in report and "RLM_GUEST_PYTHON" in fix
    # With RLM_SANDBOX=auto (the default) sessions fall back to wasm, and nsjail's findings only warn.
    fallback = doctor(RLM_GUEST_PYTHON=missing)
    assert fallback.returncode == 0, fallback.stdout
    assert line(fallback.stdout, "guest python")[0].startswith("[WARN]")
    report, _ = line(fallback.stdout, "isolation")
    assert report.startswith("[ok  ]") and "sessions run code in wasm (auto: nsjail cannot run here" in report
    report, _ = line(fallback.stdout, "wasm")  # as its sessions start: restored from the memory snapshot
    assert report.startswith("[ok  ] wasm: restored Pyodide") and "from its memory snapshot" in report, report


def test_no_isolation_by_choice_still_checks_the_jail() -> None:
    completed = doctor(RLM_SANDBOX="none")
    assert completed.returncode == 0, completed.stdout  # isolated code can run here; the setting is a warning
    assert line(completed.stdout, "jail")[0].startswith("[ok  ]")
    report, fix = line(completed.stdout, "isolation")
    assert report.startswith("[WARN]") and "WITHOUT isolation" in report and "unset RLM_SANDBOX" in fix


def test_a_check_that_breaks_becomes_a_failed_line() -> None:
    def broken() -> Check:
        raise PermissionError(13, "Permission denied", "/sys/fs/cgroup")

    check = guarded("cgroups", broken)
    assert (check.name, check.status) == ("cgroups", "fail")
    assert "PermissionError" in check.detail and "/sys/fs/cgroup" in check.detail and check.fix


@pytest.mark.parametrize(("text", "message"), [
    ("[limits]\ncpu_s = 'lots'\n", r"policy\.limits\.cpu_s must be an integer"),
    ("[limits]\ncpu_s = true\n", r"policy\.limits\.cpu_s must be an integer"),
    ("[namespaces]\nnet = 1\n", r"policy\.namespaces\.net must be true or false"),
    ("[mounts]\nreadonly = [1]\n", r"policy\.mounts\.readonly must be a list"),
    ("[seccomp]\nguest_denies_exec = true\n", r"unknown sandbox policy key policy\.seccomp\.guest_denies_exec"),
    ("[limits]\nexec_timeout_s = 5\n", None),  # an integer where the default is a float is fine
])
def test_policy_values_are_checked(tmp_path: Path, text: str, message: str | None) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(text)
    if message is None:
        assert SandboxPolicy.load(policy).limits.exec_timeout_s == 5
        return
    with pytest.raises(PolicyError, match=message):
        SandboxPolicy.load(policy)


def test_an_unreadable_policy_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"cannot read the sandbox policy file .*RLM_SANDBOX_POLICY"):
        SandboxPolicy.load(tmp_path / "missing.toml")


def test_a_wasm_snapshot_that_does_not_restore_warns(tmp_path: Path, runtime_dir: Path) -> None:
    """Sessions would still run, each loading Pyodide plain: a warning that says so, and how to start over."""
    home = tmp_path / "home"
    (home / "wasm").mkdir(parents=True)
    (home / "wasm" / "deno").symlink_to(Settings().home / "wasm" / "deno", target_is_directory=True)  # Pyodide
    settings = load_settings(flags={"home": home, "runtime_dir": runtime_dir}, environ={})
    policy = SandboxPolicy.load()
    cache = PyodideCache(home / "wasm", policy.wasm.pyodide_version)
    found = cache.find()
    assert found is not None, "Pyodide is not cached: run ./dev.sh setup"
    seed = hash_seed(home / "wasm" / "snapshots")  # this RLM_HOME's, which doctor's launcher takes too
    key = snapshot_key(found, WasmLauncher(policy, found, cache.deno_dir, seed=seed).snapshot_config())
    (home / "wasm" / "snapshots" / f"{key}.snap").write_bytes(b"not a snapshot")
    check = check_wasm(settings)
    assert check.status == "warn" and "did not restore" in check.detail and "loads Pyodide plain" in check.detail
    assert "doctor --fix" in check.fix


def test_the_output_limits_in_force_and_why() -> None:
    """Issue 31: a setting is honoured or refused, and doctor shows what reaches the host."""
    report, _ = line(doctor(RLM_MAX_OUTPUT_CHARS="30000", RLM_RESULT_BUDGET_CHARS="60000").stdout, "output limits")
    assert report.startswith("[ok  ]") and "30,000 characters of stdout" in report and "60,000" in report
    assert "above Claude Code's 50,000" in report
    refused = doctor(RLM_MAX_OUTPUT_CHARS="2000000")
    assert refused.returncode != 0
    assert "RLM_MAX_OUTPUT_CHARS=2,000,000 is more than the result budget" in refused.stdout + refused.stderr


def test_doctor_counts_the_sessions_kept_for_their_handles(tmp_path: Path) -> None:
    from rlm_mcp.doctor import check_home
    from rlm_mcp.sessions import kept

    settings = Settings(home=tmp_path / "home")
    for handle in ("first", "second"):
        kept.write(kept.directory_of(settings.home, handle), kept.KeptSession("stdio", handle, 0.0, 0.0))
    held = kept.SessionLock(kept.directory_of(settings.home, "second"))
    check = check_home(settings)
    held.release()
    assert check.status in ("ok", "warn") and "2 session(s) kept for their handles" in check.detail
    assert "1 open in a server now" in check.detail and "7 days unused, RLM_SESSION_KEEP_S" in check.detail
