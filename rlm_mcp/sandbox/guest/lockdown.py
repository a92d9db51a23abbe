"""Seccomp filter the guest installs on itself once its interpreter has started.

nsjail needs execve to start the guest, so "no new programs" cannot live in its policy; the guest adds
it as its last step of start-up, before any user code runs. Filters only ever tighten, so nothing the
guest runs later can remove it. Written with ctypes because the guest has only the standard library.
"""

import ctypes
import platform
import struct

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
EPERM = 1

# BPF opcodes (linux/filter.h).
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_RET_K = 0x06

# (audit arch, syscall numbers to deny, lowest number of a foreign ABI sharing the arch or None)
_ARCHES = {
    "x86_64": (0xC000003E, (59, 322), 0x40000000),  # execve, execveat; x32 ABI above 0x40000000
    "aarch64": (0xC00000B7, (221, 281), None),
}


def _instruction(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def _program(arch: int, denied: tuple[int, ...], foreign_abi: int | None) -> bytes:
    """Kill on a foreign architecture or ABI, EPERM for exec, allow everything else."""
    deny = SECCOMP_RET_ERRNO | EPERM
    code = [
        _instruction(BPF_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        _instruction(BPF_JEQ_K, 1, 0, arch),
        _instruction(BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS),
        _instruction(BPF_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
    ]
    if foreign_abi is not None:
        code += [
            _instruction(BPF_JGE_K, 0, 1, foreign_abi),
            _instruction(BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS),
        ]
    for number in denied:
        code += [_instruction(BPF_JEQ_K, 0, 1, number), _instruction(BPF_RET_K, 0, 0, deny)]
    code.append(_instruction(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    return b"".join(code)


def deny_exec() -> None:
    """Install the filter or raise OSError: a guest that cannot lock itself down must not run code."""
    machine = platform.machine()
    if machine not in _ARCHES:
        raise OSError(f"no exec filter for architecture {machine!r}")
    program = _program(*_ARCHES[machine])
    count = len(program) // 8
    buffer = ctypes.create_string_buffer(program, len(program))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(count, ctypes.addressof(buffer))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")
