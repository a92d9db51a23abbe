"""The MCP server itself: its lifespan (the sessions of this process) and the one place every handler is
registered, each behind the error boundary of errors.py."""

import functools
import inspect
import logging
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from mcp.server.mcpserver import Context, MCPServer

from .. import __version__
from ..config import Settings
from ..rlm.calls import child_rlm
from ..sandbox.datadir import default_runtime_root
from ..sessions import SessionRecord, SessionRegistry, UnknownSession, kept
from ..workers import backend_for, load_litellm
from .completions import install as install_completions
from .errors import Places, translated, translated_tool
from .http import SHUTDOWN_GRACE_S
from .playbook import SERVER_INSTRUCTIONS
from .requests import AppState, caller, session_key, state_of
from .stdio import leave
from .tools import RESOURCES, TOOLS, rlm_playbook
from .unknown_names import install as install_unknown_names


def _needs_litellm(settings: Settings) -> bool:
    """Whether a configured model's backend imports litellm (assistant CLIs and the lean client do not)."""
    root = settings.root_model and backend_for(settings.root_model, settings.root_api_base, tools=True)
    worker = settings.worker_model and backend_for(settings.worker_model, settings.worker_api_base)
    return any(backend and backend.loads_litellm for backend in (root, worker))


log = logging.getLogger("rlm_mcp.server")
SWEEP_EVERY_S = 3600.0


def create_server(settings: Settings, *, exit_on_signals: bool = False,
                  sessions: SessionRegistry | None = None) -> MCPServer:
    """The server; with `exit_on_signals` (stdio), SIGTERM and SIGINT close every session, then end the process
    (see `_exit_on_signal`); over HTTP uvicorn handles them and the lifespan closes the sessions. `sessions`:
    a registry made ahead, its sandbox already being chosen (stdio.py); else the lifespan makes one."""

    @asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncIterator[AppState]:
        async with anyio.create_task_group() as group:
            registry = sessions or SessionRegistry(settings, group, recurse=child_rlm)
            if sessions is None:
                await group.start(registry.sandbox.make)
            group.start_soon(registry.reap_idle)
            group.start_soon(_sweep_kept, settings)
            if exit_on_signals and sys.platform != "win32":  # asyncio on Windows has no signal handlers
                group.start_soon(_exit_on_signal, registry)
            if _needs_litellm(settings):  # warm the slow import off the event loop, before the first call waits for it
                # (abandoned at the end, not awaited: a client that closes at once must not wait seconds for it)
                group.start_soon(functools.partial(anyio.to_thread.run_sync, load_litellm, abandon_on_cancel=True))
            try:
                yield AppState(settings=settings, sessions=registry)
            finally:
                await registry.close_all()
                group.cancel_scope.cancel()

    mcp = MCPServer("rlm-mcp", instructions=SERVER_INSTRUCTIONS, version=__version__, lifespan=lifespan)
    _register(mcp, {"RLM_HOME": settings.home, "RLM_RUNTIME_DIR": settings.runtime_dir or default_runtime_root()})
    return mcp


async def _sweep_kept(settings: Settings) -> None:
    """Remove the kept sessions unused past RLM_SESSION_KEEP_S: at start-up, then every SWEEP_EVERY_S (a sweep
    reads every kept record, and their clock counts in days; a handle past it is refused when used anyway)."""
    while True:
        await anyio.to_thread.run_sync(kept.sweep, settings.home, settings.session_keep_s)
        await anyio.sleep(SWEEP_EVERY_S)


async def _exit_on_signal(sessions: SessionRegistry) -> None:
    """Stop a stdio server the way hosts and service managers ask (SIGTERM) and terminals do (SIGINT): refuse
    new calls, close every session -- running execs stopped, jails and Deno ended, live contexts kept in the
    store -- and leave (stdio.py's `leave`: a cancelled server would wait for its client's next line)."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
        async for signum in received:
            log.warning("%s received: closing every session, then exiting", signal.Signals(signum).name)
            sessions.stopping = f"the server is shutting down ({signal.Signals(signum).name})"
            with anyio.move_on_after(SHUTDOWN_GRACE_S):
                await sessions.close_all()
            leave()


def _register(mcp: MCPServer, places: Places) -> None:
    """Every handler, each behind the one error boundary (errors.py, told the server's directories so a disk
    fault names the one it hit): the only place handlers are registered."""
    for tool, annotations in TOOLS:
        register = mcp.tool(description=inspect.cleandoc(tool.__doc__ or ""), annotations=annotations)
        register(translated_tool(tool.__name__, places)(tool))
    for uri, read in RESOURCES:
        mcp.resource(uri, mime_type="application/json")(translated(f"resource {uri}", places)(read))
    mcp.prompt(name="rlm_playbook", title="RLM playbook: analyse inputs far larger than your context")(
        translated("prompt rlm_playbook", places)(rlm_playbook))
    install_completions(mcp, [uri for uri, _ in RESOURCES], translated("completion", places)(completion_values))
    install_unknown_names(mcp)


async def completion_values(ctx: Context, argument: str, given: dict[str, str]) -> list[str]:
    """What a resource argument may be, for this caller only: its live handles for `session`, else the
    contexts loaded in the session `given["session"]` names or in its default one. Asking opens nothing."""
    sessions, owner = state_of(ctx).sessions, caller(ctx)
    if argument == "session":
        return sessions.live_handles(owner)
    if argument != "name":
        return []
    if handle := given.get("session"):
        try:
            record: SessionRecord | None = await sessions.resolve(handle, owner)
        except UnknownSession:
            return []
    else:
        record = sessions.peek_default(session_key(ctx))
    return list(record.session.contexts) if record else []


