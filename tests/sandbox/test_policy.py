"""The jail policy is data: defaults parse, overrides merge, typos fail loudly."""

from pathlib import Path

import pytest

from rlm_mcp.sandbox import SandboxPolicy
from rlm_mcp.sandbox.interpreter import find_guest_interpreter
from rlm_mcp.sandbox.launch import NsjailLauncher


def test_defaults_are_safe() -> None:
    policy = SandboxPolicy.load()
    assert policy.identity.uid == 65534 and policy.identity.gid == 65534
    assert policy.namespaces.net and not policy.namespaces.loopback
    assert not any(var.split("=")[0].endswith("KEY") for var in policy.environment.vars)
    for call in ("ptrace", "mount", "bpf", "io_uring_setup", "keyctl", "unshare", "setns"):
        assert call in policy.seccomp.deny_eperm
    assert policy.seccomp.allowed_socket_families == (1,)


def test_override_from_mapping_and_file(tmp_path: Path) -> None:
    file = tmp_path / "policy.toml"
    file.write_text("[limits]\ncpu_s = 5\n")
    policy = SandboxPolicy.load({"limits": {"address_space_mb": 1024}}, file)
    assert policy.limits.address_space_mb == 1024
    assert policy.limits.cpu_s == 5
    assert policy.limits.open_files == SandboxPolicy.load().limits.open_files


def test_unknown_key_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"unknown sandbox policy key policy\.limits\.cpu_seconds"):
        SandboxPolicy.load({"limits": {"cpu_seconds": 5}})


@pytest.mark.parametrize("seconds", [0, -1, 7200])
def test_an_exec_timeout_outside_its_bound_is_refused_naming_it(seconds: int) -> None:
    """The same bound as RLM_EXEC_TIMEOUT_S and exec_code's timeout_s: a policy file used to get past it."""
    with pytest.raises(ValueError, match=r"policy\.limits\.exec_timeout_s must be more than 0 and at most 3600"):
        SandboxPolicy.load({"limits": {"exec_timeout_s": seconds}})


def test_kafel_policy_lists_denials() -> None:
    kafel = SandboxPolicy.load().seccomp.kafel()
    assert "ERRNO(1) { ptrace," in kafel
    assert "socket(domain, type, protocol) { domain != 1 }" in kafel
    assert kafel.endswith("USE rlm DEFAULT ALLOW")


def test_nsjail_config_maps_policy(tmp_path: Path) -> None:
    policy = SandboxPolicy.load({"limits": {"processes": 77}})
    config = NsjailLauncher(policy, find_guest_interpreter()).config(tmp_path)
    assert config.rlimit_nproc == 77
    assert config.uidmap[0].inside_id == config.uidmap[0].outside_id == "65534"
    assert config.keep_env is False
    assert config.iface_no_lo is True
    data_mounts = [m for m in config.mount if m.dst == "/rlm/data"]
    assert data_mounts and not data_mounts[0].rw
    assert all(not m.rw for m in config.mount if m.is_bind and m.dst not in ("/dev/null", "/dev/urandom", "/dev/zero"))


def test_unreadable_guest_interpreter_is_refused_with_the_fix(tmp_path: Path) -> None:
    import shutil

    from rlm_mcp.sandbox import SandboxUnavailable
    from rlm_mcp.sandbox.interpreter import probe

    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    copy = private / "python3"
    shutil.copy2(find_guest_interpreter().executable, copy)
    with pytest.raises(SandboxUnavailable, match=r"not readable by the jail.*RLM_GUEST_PYTHON"):
        probe(str(copy))
