"""The stdio server, started so that a new conversation's first call finds its sandbox up.

A host starts a stdio server for each conversation and may call it at once. Importing the MCP SDK and the
handlers takes ~0.7 s; the wasm sandbox's spare guest takes ~0.4 s to start. So the session registry is made
and the sandbox chosen (the spare starting) first, and the rest of the server is imported meanwhile, in a
thread. This module imports none of the SDK.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys

import anyio

from ..config import Settings
from ..rlm.calls import child_rlm
from ..sessions import SessionRegistry


async def serve_stdio(settings: Settings) -> None:
    """Serve MCP on stdin and stdout until the client closes them (or a signal ends the process)."""
    async with anyio.create_task_group() as group:
        sessions = SessionRegistry(settings, group, recurse=child_rlm)
        await group.start(sessions.sandbox.make)
        app = await anyio.to_thread.run_sync(importlib.import_module, "rlm_mcp.server.app")
        await app.create_server(settings, exit_on_signals=True, sessions=sessions).run_stdio_async()
        group.cancel_scope.cancel()


def leave() -> None:
    """End a stdio server once its sessions are closed (jails and Deno ended, live contexts in the store): at
    once, whether its client closed stdin or a signal came (app.py's `_exit_on_signal`). Python's own exit
    would tear down every module (a second with the SDK's types, several with litellm's maps) and wait for
    worker threads -- the SDK's stdin reader, which no cancellation interrupts, litellm's warm-up import --
    while a client gives a server 2 s before it sends SIGTERM: time a host, and the test suite, would wait."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    logging.shutdown()
    os._exit(0)
