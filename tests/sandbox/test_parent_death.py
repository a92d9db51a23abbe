"""A jail dies with the server that started it, by either route `dies_with_parent` takes (util-linux's setpriv,
or the Python one-liner where setpriv is missing): a parent killed outright takes its child along."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# The parent (a server) starts the child from its own process, so the pid the one-liner checks is its own.
PARENT = ("import subprocess, sys, time; from rlm_mcp.sandbox.launch import dies_with_parent as d; "
          "child = subprocess.Popen(d(sys.argv[2:], sys.argv[1] or None)); print(child.pid, flush=True); "
          "time.sleep(60)")


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("setpriv", [shutil.which("setpriv"), None], ids=["setpriv", "python"])
def test_a_child_dies_when_its_parent_is_killed(setpriv: str | None) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, setpriv or "", "/bin/sleep", "60"],
                              stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    deadline = time.monotonic() + 5
    while not Path(f"/proc/{child}/cmdline").read_bytes().startswith(b"/bin/sleep") and time.monotonic() < deadline:
        time.sleep(0.01)  # the server outlives the jail's start by far: kill the parent once sleep runs
    assert alive(child)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 2
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(child)
    parent.stdout.close()
