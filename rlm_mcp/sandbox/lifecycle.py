"""One sandbox's guest over its life: started (and checked as it starts), restarted, killed, closed.

A start opens the launcher's command, reads the guest's "ready" (which, in a jail, names the jail's user),
runs the prelude, and leaves a channel (channel.py) reading in the background; a kill takes the guest's
whole process tree (process.py). What the requests mean is the Sandbox's (repl.py).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup

from .channel import GuestChannel, HostSide
from .datadir import unreachable_reason
from .errors import ProtocolViolation, SandboxClosed, SandboxCrashed, SandboxStartError
from .launch import Launcher, LaunchPlan
from .policy import SandboxPolicy
from .process import LogTail, kill_jail

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 30.0


class GuestLifecycle:
    """Starts, restarts and kills the guest process of one data directory; `channel` is the running one's."""

    def __init__(self, launcher: Launcher, policy: SandboxPolicy, data_dir: Path, prelude: str,
                 host: HostSide) -> None:
        self.launcher = launcher
        self.policy = policy
        self.data_dir = data_dir
        self.prelude = prelude
        self.host = host
        self.guest_info: dict[str, Any] = {}  # the guest's "ready" message
        self.channel: GuestChannel | None = None
        self._task_group: TaskGroup | None = None
        self._log = LogTail()
        self._cleanup: list[Path] = []
        self._closed = False

    @property
    def alive(self) -> bool:
        return self.channel is not None and self.channel.alive

    def log_tail(self) -> str:
        return self._log.text()

    async def start(self, task_group: TaskGroup) -> None:
        """Start the guest and wait until it is ready; background readers live in `task_group`."""
        if self._closed:
            raise SandboxClosed("this sandbox was closed; create a new one")
        self._task_group = task_group
        plan = self._plan()
        try:
            channel = await self._open(plan, task_group)
            self.guest_info = await self._handshake(channel)
        finally:
            for path in plan.startup_paths:
                shutil.rmtree(path, ignore_errors=True)
        channel.listen(task_group)
        if self.prelude:
            reply = await channel.request({"op": "prelude", "code": self.prelude}, deadline_s=STARTUP_TIMEOUT_S)
            if reply.get("status") != "ok":
                await self.kill()
                raise SandboxStartError(f"the prelude failed: {reply.get('error')}")

    async def restart(self) -> None:
        """Kill the guest if it runs and start a fresh one (all variables are lost)."""
        if self._task_group is None:
            raise SandboxClosed("restart() before start()")
        await self.kill()
        await self.start(self._task_group)

    async def close(self) -> None:
        """Kill the guest and its whole process tree, and remove what its launches left; idempotent."""
        self._closed = True
        await self.kill()
        for path in self._cleanup:
            shutil.rmtree(path, ignore_errors=True)
        self._cleanup.clear()

    async def kill(self) -> None:
        """Kill the running guest (if any); requests still waiting on it fail with why it died."""
        channel = self.channel
        if channel is None:
            return
        channel.stop_listening()
        process = channel.process
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                await kill_jail(process)
            with anyio.move_on_after(5):
                await process.aclose()
        channel.fail_waiters(channel.death or SandboxCrashed("killed by the host"))

    def _plan(self) -> LaunchPlan:
        """The launcher's command for this data directory, which the guest's user must be able to read."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.launcher.expected_uid is not None and (problem := unreachable_reason(self.data_dir)):
            raise SandboxStartError(problem)
        plan = self.launcher.plan(self.data_dir)
        self._cleanup += plan.cleanup_paths
        return plan

    async def _open(self, plan: LaunchPlan, task_group: TaskGroup) -> GuestChannel:
        self._log.clear()
        process = await anyio.open_process(
            plan.argv, env=plan.env, cwd=plan.cwd, start_new_session=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        task_group.start_soon(self._log.drain, process)
        self.channel = GuestChannel(process, self.host, self.policy.limits.max_message_mb)
        return self.channel

    async def _handshake(self, channel: GuestChannel) -> dict[str, Any]:
        """The guest's first message, which must say it is ready and, in a jail, run as the jail's user."""
        try:
            with anyio.fail_after(STARTUP_TIMEOUT_S):
                ready = await channel.read_message()
        except (TimeoutError, SandboxCrashed, ProtocolViolation) as exc:
            await self.kill()
            detail = str(exc) or ("it was not ready in time" if isinstance(exc, TimeoutError) else "it exited")
            raise SandboxStartError(f"the sandbox did not start ({detail}); {self.launcher.start_fix}",
                                    log=self.log_tail()) from exc
        if ready.get("op") != "ready":
            await self.kill()
            raise SandboxStartError(f"unexpected first message from the guest: {ready!r}", log=self.log_tail())
        if isinstance(warning := ready.get("warning"), str):  # e.g. a wasm snapshot that did not restore
            log.warning("%s sandbox in %s: %s", self.launcher.name, self.data_dir.name, warning[:500])
        expected_uid = self.launcher.expected_uid
        if expected_uid is not None and ready.get("uid") != expected_uid:
            await self.kill()
            raise SandboxStartError(f"guest runs as uid {ready.get('uid')}, expected {expected_uid}")
        return ready
