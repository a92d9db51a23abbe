"""A persistent, isolated Python REPL for model-written code.

This component knows nothing of MCP, LLMs or code indexes: it starts a guest interpreter under
nsjail, or as WebAssembly under Deno where nsjail cannot run (or, when asked for by name, without
isolation), runs code in it with timeouts, moves data in through a read-only data directory, and
answers the guest's callbacks with host functions, and keeps checkpoints of the REPL's variables that
the guest writes and reads (the host stores them, never unpickles them).
"""

from __future__ import annotations

from .backends import KINDS_HELP, SANDBOX_KINDS, SandboxKind, choose_backend, create_launcher, nsjail_problem
from .checkpoints import CheckpointNote, CheckpointStore, RestoreNote
from .datadir import new_data_dir
from .errors import (
    GuestCallFailed,
    PolicyError,
    ProtocolViolation,
    SandboxClosed,
    SandboxCrashed,
    SandboxError,
    SandboxStartError,
    SandboxUnavailable,
)
from .interpreter import GuestInterpreter, find_guest_interpreter
from .launch import Launcher, NsjailLauncher, UnisolatedLauncher
from .policy import SandboxPolicy
from .repl import Sandbox
from .results import CapturedText, ExecResult, ExecStatus, VariableInfo, VariableValue
from .spare import Spare, SpareKeeper
from .wasm import PyodideCache, WasmLauncher

__all__ = [
    "KINDS_HELP",
    "SANDBOX_KINDS",
    "CapturedText",
    "CheckpointNote",
    "CheckpointStore",
    "ExecResult",
    "ExecStatus",
    "GuestCallFailed",
    "GuestInterpreter",
    "Launcher",
    "NsjailLauncher",
    "PolicyError",
    "ProtocolViolation",
    "PyodideCache",
    "RestoreNote",
    "Sandbox",
    "SandboxClosed",
    "SandboxCrashed",
    "SandboxError",
    "SandboxKind",
    "SandboxPolicy",
    "SandboxStartError",
    "SandboxUnavailable",
    "Spare",
    "SpareKeeper",
    "UnisolatedLauncher",
    "VariableInfo",
    "VariableValue",
    "WasmLauncher",
    "choose_backend",
    "create_launcher",
    "find_guest_interpreter",
    "new_data_dir",
    "nsjail_problem",
]

