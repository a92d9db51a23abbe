"""Progress, one type everywhere: `(done, total, message)` -- how far a long piece of work has come, out of how
much (None while that is unknown: a walk still counting), and a line a person can read.

A callback may be a plain function or a coroutine function. On the event loop, `tell` awaits what it
returns (an exec's worker batches, an RLM run's iterations); where the work runs in a worker thread (a walk,
a store, Pyodide's fetch) only a plain function will do, and the server passes one there
(server/requests.py turns either into MCP progress notifications).
"""

from collections.abc import Awaitable, Callable

Progress = Callable[[int, int | None, str], Awaitable[None] | None]


async def tell(progress: Progress | None, done: int, total: int | None, message: str) -> None:
    """Report to `progress` (if any), awaiting it when it is asynchronous."""
    if progress is not None:
        maybe = progress(done, total, message)
        if maybe is not None:
            await maybe
