"""The guest's output cap keeps head and tail while writing, never the whole stream."""

import importlib.util
import sys

from rlm_mcp.sandbox.launch import GUEST_RUNTIME_DIR

RUNTIME = GUEST_RUNTIME_DIR / "runtime.py"


def load_runtime():
    """Import the guest runtime as a module (it is a script run inside the jail)."""
    guest_dir = str(RUNTIME.parent)
    sys.path.insert(0, guest_dir)
    try:
        spec = importlib.util.spec_from_file_location("rlm_guest_runtime", RUNTIME)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(guest_dir)


runtime = load_runtime()


def test_small_output_is_kept_whole() -> None:
    writer = runtime.CappedWriter(100)
    writer.write("hello\n")
    assert writer.result() == ("hello\n", "", 0)


def test_large_output_keeps_head_and_tail() -> None:
    writer = runtime.CappedWriter(100)
    for i in range(10_000):
        writer.write(f"line {i}\n")
    head, tail, dropped = writer.result()
    assert head.startswith("line 0\nline 1\n") and len(head) == 50
    assert tail.endswith("line 9999\n") and len(tail) == 50
    total = sum(len(f"line {i}\n") for i in range(10_000))
    assert dropped == total - 100


def test_buffer_stays_bounded_while_writing() -> None:
    writer = runtime.CappedWriter(1000)
    for _ in range(100_000):
        writer.write("x" * 100)
    assert writer.tail_len <= 2 * 500 + 4096 + 100
