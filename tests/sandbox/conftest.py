"""Fixtures that start real jailed REPLs (nsjail, uid 65534, the checked-in policy)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from rlm_mcp.sandbox import Sandbox, SandboxPolicy, create_launcher, new_data_dir


@pytest.fixture
def policy() -> SandboxPolicy:
    return SandboxPolicy.load()


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = new_data_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@asynccontextmanager
async def running_sandbox(
    policy: SandboxPolicy, data_dir: Path, kind: str = "nsjail", **kwargs: Any
) -> AsyncIterator[Sandbox]:
    async with anyio.create_task_group() as group:
        sandbox = Sandbox(create_launcher(kind, policy), policy, data_dir, **kwargs)  # type: ignore[arg-type]
        await sandbox.start(group)
        try:
            yield sandbox
        finally:
            await sandbox.close()
            group.cancel_scope.cancel()


@pytest.fixture
def make_sandbox(data_dir: Path) -> Callable[..., Any]:
    """`async with make_sandbox(policy=..., callbacks=...) as sandbox:` in a test."""

    def factory(policy: SandboxPolicy | None = None, **kwargs: Any) -> Any:
        return running_sandbox(policy or SandboxPolicy.load(), data_dir, **kwargs)

    return factory
