"""Sessions: one per client or handle, each with its own jailed REPL, contexts, code index, usage and trajectory.

session.py holds a session's lifecycle and exec, handles.py the handles that name sessions across calls,
index.py the code index of a session's contexts. Knows nothing of the MCP transport.
"""

from .handles import HandleRegistry, ReplicaGone, SessionExpired, UnknownSession
from .index import IndexNotReady, SessionIndex
from .session import Callback, ExecOutcome, Session, SessionManager, new_trajectory

__all__ = ["Callback", "ExecOutcome", "HandleRegistry", "IndexNotReady", "ReplicaGone", "Session", "SessionExpired",
           "SessionIndex", "SessionManager", "UnknownSession", "new_trajectory"]
