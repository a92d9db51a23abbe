"""One sandbox started ahead of the session that will use it, for backends whose start is slow (wasm).

Why: even restored from a memory snapshot a wasm guest takes ~0.3 s of CPU to start, more under load,
and every new conversation would wait for it. A spare is a whole guest, prelude run, with its own data
directory made ahead (Deno's read permission is fixed when the process starts, so the directory must
exist before it). A new session claims it -- synchronously, so the session's data directory is the
spare's from its first byte -- and adopts the started guest with its own callbacks; the next spare
starts a while after the claimed one is up, at once if a session claims it (one start at a time, and
not during the claimant's first call: on two cores two starts at once slow both).

Nothing passes from one session to the next: each spare is its own process, restored from the snapshot
(or loaded plain), that no code has run in before its session adopts it.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from anyio.abc import TaskGroup

from .channel import Callback
from .checkpoints import CheckpointStore
from .datadir import new_data_dir
from .errors import SandboxError
from .launch import Launcher
from .policy import SandboxPolicy
from .repl import Sandbox

log = logging.getLogger(__name__)

# The next spare starts this long after the claimed one is up (at once if claimed meanwhile): its start
# would otherwise take CPU from the claimant's first call -- on two cores, the one that waits for it.
NEXT_SPARE_AFTER_S = 3.0


@dataclass(eq=False)
class Spare:
    """A guest being started or ready, and the data directory it may read."""

    sandbox: Sandbox
    ready: anyio.Event = field(default_factory=anyio.Event)
    claimed: anyio.Event = field(default_factory=anyio.Event)
    error: Exception | None = None

    @property
    def data_dir(self) -> Path:
        return self.sandbox.data_dir

    async def adopt(self, callbacks: Mapping[str, Callback], checkpoints: CheckpointStore | None = None) -> Sandbox:
        """The started guest, now answering with `callbacks` and checkpointing into `checkpoints`; raises the
        start's error if it failed."""
        await self.ready.wait()
        if self.error is not None:
            raise self.error
        self.sandbox.answer_with(callbacks, checkpoints)
        return self.sandbox

    async def discard(self) -> None:
        """Stop a spare nobody adopted (its data directory is the claimant's to remove)."""
        with anyio.CancelScope(shield=True):
            await self.ready.wait()
            await self.sandbox.close()


class SpareKeeper:
    """Keeps one spare of `launcher`'s guests ready in `task_group` (the server's)."""

    def __init__(self, launcher: Launcher, policy: SandboxPolicy, task_group: TaskGroup, *, prelude: str = "",
                 runtime_dir: Path | None = None) -> None:
        self.launcher = launcher
        self.policy = policy
        self.task_group = task_group
        self.prelude = prelude
        self.runtime_dir = runtime_dir
        self._spare: Spare | None = None
        self._closed = False

    def fill(self) -> None:
        """Start a spare if there is none."""
        if self._spare is None and not self._closed:
            self._spare = self._start(after=None)

    def claim(self) -> Spare | None:
        """The current spare (started or starting) for a new session, and the next one on its way."""
        spare = self._spare
        if spare is None or self._closed:
            return None
        spare.claimed.set()
        self._spare = self._start(after=spare.ready)
        return spare

    async def aclose(self) -> None:
        self._closed = True
        spare, self._spare = self._spare, None
        if spare is not None:
            spare.claimed.set()  # one waiting to start ends at once, unstarted
            await spare.discard()
            shutil.rmtree(spare.data_dir, ignore_errors=True)

    def _start(self, after: anyio.Event | None) -> Spare:
        data_dir = new_data_dir(self.runtime_dir)
        spare = Spare(Sandbox(self.launcher, self.policy, data_dir, prelude=self.prelude))
        self.task_group.start_soon(self._run, spare, after)
        return spare

    async def _run(self, spare: Spare, after: anyio.Event | None) -> None:
        try:
            if after is not None:
                await after.wait()
                with anyio.move_on_after(NEXT_SPARE_AFTER_S):  # unless a session wants it now
                    await spare.claimed.wait()
            if self._closed and spare is not self._spare:
                spare.error = SandboxError("the server is stopping")  # no fault: nothing to log
                return
            await spare.sandbox.start(self.task_group)
        except Exception as exc:
            spare.error = exc
            log.warning("the spare %s sandbox did not start (%s): the next session starts its own", self.launcher.name,
                        exc)
        finally:
            spare.ready.set()
