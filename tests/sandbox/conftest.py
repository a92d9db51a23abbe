"""Fixtures that start real isolated REPLs on both backends: nsjail (uid 65534) and wasm (Pyodide under
Deno), each with the checked-in policy.

Every test that takes `sandbox`, `make_sandbox` or `backend` runs once per backend. Pyodide takes seconds
to start, so `sandbox` is one REPL per backend per test module, restarted after a test that killed it;
`make_sandbox` starts a private one for a test that needs its own policy or a fresh guest.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from rlm_mcp.config import Settings
from rlm_mcp.sandbox import Launcher, Sandbox, SandboxPolicy, create_launcher, new_data_dir

BACKENDS = ("nsjail", "wasm")
# Where the wasm backend finds Pyodide: the default RLM_HOME, which `./dev.sh setup` fills (`rlm-mcp
# doctor --fix`); a missing cache is fetched through the npm registry by the first test.
WASM_HOME = Settings().home


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def policy() -> SandboxPolicy:
    return SandboxPolicy.load()


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    path = new_data_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@asynccontextmanager
async def running_sandbox(
    policy: SandboxPolicy, data_dir: Path, kind: str = "nsjail", launcher: Launcher | None = None, **kwargs: Any
) -> AsyncIterator[Sandbox]:
    """A started sandbox of `kind` (or of `launcher`, one a test built itself), closed afterwards."""
    async with anyio.create_task_group() as group:
        launcher = launcher or create_launcher(kind, policy, home=WASM_HOME)  # type: ignore[arg-type]
        sandbox = Sandbox(launcher, policy, data_dir, **kwargs)
        await sandbox.start(group)
        try:
            yield sandbox
        finally:
            await sandbox.close()
            group.cancel_scope.cancel()


@pytest.fixture
def make_sandbox(data_dir: Path, backend: str) -> Callable[..., Any]:
    """`async with make_sandbox(policy=..., callbacks=...) as sandbox:` in a test, on this test's backend."""

    def factory(policy: SandboxPolicy | None = None, **kwargs: Any) -> Any:
        return running_sandbox(policy or SandboxPolicy.load(), data_dir, backend, **kwargs)

    return factory


@pytest.fixture
def start_sandbox(data_dir: Path) -> Callable[..., Any]:
    """`async with start_sandbox("wasm") as sandbox:` for a test about one backend only (not parametrized)."""

    def factory(kind: str, policy: SandboxPolicy | None = None, **kwargs: Any) -> Any:
        return running_sandbox(policy or SandboxPolicy.load(), data_dir, kind, **kwargs)

    return factory


SHARED_PRELUDE = "def helper():\n    return 'original'\n"


async def _echo(payload: Any) -> Any:
    return {"echo": payload}


async def _fail(payload: Any) -> Any:
    raise RuntimeError("upstream said no")


async def _slow(payload: Any) -> Any:
    await anyio.sleep(float(payload))
    return {"slept": payload}


@pytest.fixture(scope="module")
async def shared_sandbox(data_dir: Path, backend: str) -> AsyncIterator[Sandbox]:
    callbacks = {"echo": _echo, "fail": _fail, "slow": _slow}
    async with running_sandbox(SandboxPolicy.load(), data_dir, backend, prelude=SHARED_PRELUDE,
                               callbacks=callbacks) as sandbox:
        yield sandbox


@pytest.fixture
async def sandbox(shared_sandbox: Sandbox) -> AsyncIterator[Sandbox]:
    """This module's REPL on this test's backend; variables of earlier tests may be there."""
    if not shared_sandbox.alive:
        await shared_sandbox.restart()
    yield shared_sandbox
    if not shared_sandbox.alive:
        await shared_sandbox.restart()
