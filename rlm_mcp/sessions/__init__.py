"""Sessions: one per connection or handle, each with its own jailed REPL, contexts, code index, worker
calls, usage and trajectory.

registry.py holds every session of a server by handle (the one way to address one); session.py a
session's lifecycle and exec (`Session.build`, the one way to build one); calls.py its worker calls and
ledger; index.py the code index of its contexts; service.py the typed calls the host's tools and the REPL's
callbacks both make (symbols, status, sub_query); kept.py what a session keeps in RLM_HOME and resume.py how a
later server takes it up from there. Knows nothing of the MCP transport.
"""

from . import kept, service
from .calls import Reply, WorkerCalls
from .index import Cursor, IndexNotReady, SessionIndex, SymbolAnswer
from .registry import ReplicaGone, SessionExpired, SessionRecord, SessionRegistry, UnknownSession
from .session import ChildRLM, ExecOutcome, Session, new_trajectory

__all__ = ["ChildRLM", "Cursor", "ExecOutcome", "IndexNotReady", "ReplicaGone", "Reply", "Session",
           "SessionExpired", "SessionIndex", "SessionRecord", "SessionRegistry", "SymbolAnswer", "UnknownSession",
           "WorkerCalls", "kept", "new_trajectory", "service"]
