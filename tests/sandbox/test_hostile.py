"""Hostile code in the guest is contained; the session (or at least the host) survives.

Limits are read from the policy in force, so the tests follow the policy rather than repeat it.
No test sends traffic anywhere: socket creation itself must fail inside the jail.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rlm_mcp.sandbox import SandboxPolicy
from rlm_mcp.sandbox.repl import _group_members

pytestmark = pytest.mark.anyio


async def run(sandbox, code: str, timeout_s: float = 20):
    result = await sandbox.exec(code, timeout_s=timeout_s)
    assert result.status in ("ok", "error"), result
    return result


@pytest.mark.parametrize(
    ("family", "kind"),
    [("AF_INET", "SOCK_STREAM"), ("AF_INET6", "SOCK_STREAM"), ("AF_INET", "SOCK_DGRAM"),
     ("AF_NETLINK", "SOCK_RAW"), ("AF_PACKET", "SOCK_RAW"), ("40", "SOCK_STREAM")],
    ids=["tcp4-loopback-or-outside", "tcp6", "udp", "netlink", "packet", "vsock"],
)
async def test_no_network_sockets(make_sandbox, family: str, kind: str) -> None:
    family_expr = family if family.isdigit() else f"socket.{family}"
    code = (
        "import socket\n"
        f"try:\n    socket.socket({family_expr}, socket.{kind})\n    print('CREATED')\n"
        "except OSError as exc:\n    print('denied', exc.errno)\n"
    )
    async with make_sandbox() as sandbox:
        result = await run(sandbox, code)
        assert result.stdout.text.startswith("denied"), result.stdout.text


async def test_no_interfaces_not_even_loopback(make_sandbox) -> None:
    async with make_sandbox() as sandbox:
        result = await run(sandbox, "import socket\nsocket.if_nameindex()")
        assert "'lo'" not in result.stdout.text


async def test_host_files_are_invisible(make_sandbox) -> None:
    code = (
        "import os\n"
        "for path in ['/etc/shadow', '/etc/passwd', '/root', '/home', '/proc/1/environ', '/work', '/var']:\n"
        "    print(path, os.path.exists(path))\n"
    )
    async with make_sandbox() as sandbox:
        result = await run(sandbox, code)
        assert "True" not in result.stdout.text, result.stdout.text


async def test_writes_only_in_tmp(make_sandbox, data_dir: Path) -> None:
    code = (
        "import os\n"
        "for path in ['/usr/lib/evil', '/evil', '/rlm/data/evil', '/rlm/guest/runtime.py', '/tmp/ok']:\n"
        "    try:\n        open(path, 'a').write('x')\n        print(path, 'WROTE')\n"
        "    except OSError as exc:\n        print(path, 'denied', exc.errno)\n"
    )
    async with make_sandbox() as sandbox:
        result = await run(sandbox, code)
    lines = result.stdout.text.splitlines()
    assert lines[-1] == "/tmp/ok WROTE"
    assert all("denied" in line for line in lines[:-1]), lines
    assert not (data_dir / "evil").exists()


async def test_filling_the_disk_stops_at_the_caps(make_sandbox) -> None:
    policy = SandboxPolicy.load({"limits": {"tmp_size_mb": 16, "file_size_mb": 8}})
    code = (
        "chunk = b'x' * (1 << 20)\n"
        "def fill(path, n):\n"
        "    try:\n        with open(path, 'wb') as f:\n            for _ in range(n): f.write(chunk)\n"
        "    except OSError as exc:\n        return exc.errno\n"
        "one = fill('/tmp/big', 100)\n"
        "many = [fill(f'/tmp/part{i}', 7) for i in range(5)]\n"
        "print(one, many)\n"
    )
    async with make_sandbox(policy=policy) as sandbox:
        result = await run(sandbox, code)
        assert result.stdout.text.startswith("27 "), result  # EFBIG: the file-size rlimit
        assert "28" in result.stdout.text  # ENOSPC: the tmpfs cap
        assert (await sandbox.exec("'alive'")).ok


async def test_fork_bomb_is_capped(make_sandbox) -> None:
    policy = SandboxPolicy.load({"limits": {"processes": 32}})
    code = (
        "import os, time\nborn = 0\n"
        "try:\n    while True:\n        if os.fork() == 0:\n            time.sleep(60)\n            os._exit(0)\n"
        "        born += 1\n"
        "except OSError as exc:\n    print('stopped after', born, exc.errno)\n"
    )
    async with make_sandbox(policy=policy) as sandbox:
        result = await run(sandbox, code)
        born = int(result.stdout.text.split()[2])
        assert born < policy.limits.processes, result.stdout.text
        assert (await sandbox.exec("'alive'")).ok


async def test_memory_bomb_raises_memory_error(make_sandbox, policy: SandboxPolicy) -> None:
    too_much = policy.limits.address_space_mb * 2 * 1024 * 1024
    async with make_sandbox() as sandbox:
        await sandbox.exec("kept = 1")
        result = await sandbox.exec(f"hog = bytearray({too_much})")
        assert result.status == "error" and result.error.startswith("MemoryError")
        assert (await sandbox.exec("kept")).stdout.text == "1\n"


@pytest.mark.parametrize(
    "code",
    [
        "import os\nstatus = os.system('id')\nprint('exit', os.waitstatus_to_exitcode(status))",
        "import subprocess\nsubprocess.run(['/bin/sh', '-c', 'id'])",
        "import os\nos.execv('/usr/bin/python3', ['python3', '-c', 'print(1)'])",
    ],
    ids=["os.system", "subprocess", "execv"],
)
async def test_no_new_programs(make_sandbox, code: str) -> None:
    async with make_sandbox() as sandbox:
        result = await sandbox.exec(code)
        if result.ok:  # os.system forks a child whose exec fails: 127, "command not found"
            assert result.stdout.text == "exit 127\n", result
        else:
            assert result.error.startswith(("PermissionError", "FileNotFoundError")), result
        assert "uid=" not in result.stdout.text
        assert (await sandbox.exec("'alive'")).ok


@pytest.mark.parametrize(
    ("name", "number", "args"),
    [("ptrace", 101, "0, 0, 0, 0"), ("mount", 165, "0, 0, 0, 0, 0"), ("bpf", 321, "0, 0, 0"),
     ("io_uring_setup", 425, "1, 0"), ("keyctl", 250, "0, 0"), ("unshare", 272, "0x10000000"),
     ("setns", 308, "0, 0")],
)
async def test_dangerous_syscalls_fail(make_sandbox, name: str, number: int, args: str) -> None:
    if os.uname().machine != "x86_64":
        pytest.fail("syscall numbers in this test are x86_64's; add this machine's numbers")
    code = (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        f"print(libc.syscall({number}, {args}), ctypes.get_errno())\n"
    )
    async with make_sandbox() as sandbox:
        result = await run(sandbox, code)
        assert result.stdout.text == "-1 1\n", (name, result.stdout.text)


async def test_cannot_become_root(make_sandbox) -> None:
    code = (
        "import os\nprint(os.getuid(), os.getgid())\n"
        "try:\n    os.setuid(0)\n    print('ROOT')\nexcept OSError as exc:\n    print('denied', exc.errno)\n"
    )
    async with make_sandbox() as sandbox:
        result = await run(sandbox, code)
        assert result.stdout.text.startswith("65534 65534\ndenied")
        guest_pids = [pid for pid in _group_members(sandbox._process.pid) if pid != sandbox._process.pid]
        assert guest_pids
        for pid in guest_pids:  # seen from the host, the guest is nobody too
            status = Path(f"/proc/{pid}/status").read_text()
            uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
            assert uid_line.split()[1:] == ["65534"] * 4


async def test_host_environment_is_invisible(make_sandbox, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-must-not-leak")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "also-secret")
    async with make_sandbox() as sandbox:
        result = await run(sandbox, "import os\nprint(sorted(os.environ))\nprint(dict(os.environ))")
        assert "sk-test" not in result.stdout.text and "OPENAI" not in result.stdout.text
        assert "AWS" not in result.stdout.text


async def test_symlinks_in_the_data_dir_do_not_escape(make_sandbox, data_dir: Path) -> None:
    (data_dir / "shadow").symlink_to("/etc/shadow")
    (data_dir / "home").symlink_to("/root")
    (data_dir / "up").symlink_to("../../..")
    code = (
        "import os\n"
        "for name in ['shadow', 'home', 'up']:\n"
        "    path = '/rlm/data/' + name\n"
        "    try:\n        print(name, os.listdir(path) if os.path.isdir(path) else open(path).read()[:20])\n"
        "    except OSError as exc:\n        print(name, 'denied', exc.errno)\n"
    )
    async with make_sandbox() as sandbox:
        result = await run(sandbox, code)
        lines = result.stdout.text.splitlines()
        assert lines[0].startswith("shadow denied") and lines[1].startswith("home denied")
        assert "root" not in lines[2] and "etc" not in lines[2] and "work" not in lines[2], lines[2]

