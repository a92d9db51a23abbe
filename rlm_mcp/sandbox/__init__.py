"""A persistent, isolated Python REPL for model-written code.

This component knows nothing of MCP, LLMs or code indexes: it starts a guest interpreter under
nsjail (or, when asked for by name, without isolation), runs code in it with timeouts, moves data in
through a read-only data directory, and answers the guest's callbacks with host functions.
"""

from __future__ import annotations

import logging
from typing import Literal

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

__all__ = [
    "CapturedText",
    "ExecResult",
    "ExecStatus",
    "GuestCallFailed",
    "GuestInterpreter",
    "Launcher",
    "NsjailLauncher",
    "PolicyError",
    "ProtocolViolation",
    "Sandbox",
    "SandboxClosed",
    "SandboxCrashed",
    "SandboxError",
    "SandboxPolicy",
    "SandboxStartError",
    "SandboxUnavailable",
    "UnisolatedLauncher",
    "VariableInfo",
    "VariableValue",
    "create_launcher",
    "find_guest_interpreter",
    "new_data_dir",
]

SandboxKind = Literal["nsjail", "none"]
UNISOLATED_WARNING = (
    "RLM_SANDBOX=none: model-written code runs WITHOUT ISOLATION, with your user's files, network and "
    "credentials. Use this only for development on a machine where nsjail cannot run."
)


def create_launcher(kind: SandboxKind, policy: SandboxPolicy, guest_python: str | None = None) -> Launcher:
    """The launcher for `kind`; the unisolated one only when named, and it warns every time."""
    interpreter = find_guest_interpreter(guest_python)
    if kind == "nsjail":
        return NsjailLauncher(policy, interpreter)
    if kind == "none":
        logging.getLogger("rlm_mcp").warning(UNISOLATED_WARNING)
        return UnisolatedLauncher(policy, interpreter)
    raise SandboxUnavailable(f"unknown sandbox kind {kind!r}: use 'nsjail' (default) or 'none' (no isolation)")
