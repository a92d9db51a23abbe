"""The autonomous RLM loop: a root model writes code against the REPL until it gives an answer.

One readable `for` over iterations; limit checks are named methods; every step is recorded. Money,
tokens, model calls and wall time are not the loop's to count: every root call goes through the session's
ledger (the `Budget` it is given), the same one its code's worker calls and child RLMs spend from, and the
loop stops on the ledger's clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..progress import Progress, tell
from ..results import ExecReport
from ..results.shaping import cut_middle
from ..sessions import Session
from ..workers import Budget, BudgetExceeded, Spent, Usage
from .errors import RootContextFull, RootModelError
from .prompts import (
    ANSWER_NOW,
    FIRST_USER_MESSAGE,
    HISTORY_DROPPED,
    NO_TOOLS_SUFFIX,
    NUDGE_NO_ACTION,
    SYSTEM_PROMPT,
)
from .root import RootModel, RootReply

OUTPUT_BUDGET_CHARS = 8_000
DEFAULT_ITERATIONS = 20
# How long past the call tree's wall clock (RLM_MAX_WALL_S) the one last root call of a run that reached it
# may take: the clock that stopped the run must not also refuse the answer it asks for.
FINAL_ANSWER_GRACE_S = 60.0
Record = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class RLMLimits:
    """What bounds one run besides the session's ledger, whose limits cover the whole call tree: model calls,
    tokens, USD and its one wall clock (RLM_MAX_WALL_S). Each code block runs under the session's exec
    timeout (its sandbox policy's, which RLM_EXEC_TIMEOUT_S sets)."""

    max_iterations: int = DEFAULT_ITERATIONS


@dataclass(slots=True)
class RLMUsage:
    iterations: int = 0
    root: Usage = field(default_factory=Usage)  # this run's root calls
    code_blocks: int = 0
    elapsed_s: float = 0.0

    def add_reply(self, reply: RootReply) -> None:
        self.root.add(reply.tokens_in, reply.tokens_out, reply.cost_usd)

    # The public names of the Python API (README), read from `root`.
    @property
    def root_calls(self) -> int:
        return self.root.calls

    @property
    def root_tokens_in(self) -> int:
        return self.root.tokens_in

    @property
    def root_tokens_out(self) -> int:
        return self.root.tokens_out

    @property
    def root_cost_usd(self) -> float | None:
        return self.root.cost_usd

    def as_dict(self) -> dict[str, Any]:
        return {"iterations": self.iterations, "root_calls": self.root_calls, "root_tokens_in": self.root_tokens_in,
                "root_tokens_out": self.root_tokens_out, "root_cost_usd": self.root.as_dict()["cost_usd"],
                "code_blocks": self.code_blocks, "elapsed_s": self.elapsed_s}


@dataclass(slots=True)
class RLMResult:
    answer: str
    status: Literal["final", "best_effort", "failed"]
    usage: RLMUsage
    reason: str | None = None
    worker_usage: dict[str, Any] = field(default_factory=dict)
    spent: Spent = field(default_factory=Spent)  # the session's ledger when the run ended: all model calls


class RLMLoop:
    def __init__(self, session: Session, root: RootModel, limits: RLMLimits, budget: Budget, *,
                 on_iteration: Progress | None = None) -> None:
        self.session = session
        self.root = root
        self.limits = limits
        self.budget = budget
        self.record = session.record  # the session's trajectory (and its observer)
        self.on_iteration = on_iteration
        self.usage = RLMUsage()
        self.started = time.monotonic()
        self.last_output = ""
        self.turns_dropped = 0  # older turns dropped to fit the root's context window, so far

    async def run(self, query: str) -> RLMResult:
        system = SYSTEM_PROMPT + ("" if self.root.use_tools else NO_TOOLS_SUFFIX)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": system},
            {"role": "user", "content": FIRST_USER_MESSAGE.format(query=query, metadata=self.metadata())},
        ]
        self.record({"type": "rlm_start", "query": query, "model": self.root.model})
        reason = f"the iteration limit ({self.limits.max_iterations})"
        for iteration in range(1, self.limits.max_iterations + 1):
            if stop := self.limit_reached():
                reason = stop
                break
            self.usage.iterations = iteration
            await self.notify(iteration, "asking the root model")
            try:
                reply = await self.ask_root(messages)
            except BudgetExceeded as exc:
                if iteration == 1:
                    return self.finish(self.last_output, "failed", str(exc))
                reason = self.limit_reached() or f"the session budget: {exc}"  # the clock, also mid-call
                break
            except RootModelError as exc:
                return self.finish(self.last_output, "failed" if iteration == 1 else "best_effort", str(exc))
            self.usage.add_reply(reply)
            self.record({"type": "root_reply", "iteration": iteration, "text": reply.text[:4000],
                         "tool_calls": len(reply.tool_calls), "tokens_in": reply.tokens_in,
                         "tokens_out": reply.tokens_out, "cost_usd": reply.cost_usd})
            messages.append(reply.message)
            answer = await self.act(reply, messages, iteration)
            if answer is not None:
                return self.finish(answer, "final")
        return await self.best_effort(messages, reason)

    async def ask_root(self, messages: list[dict[str, Any]], *, allow_tools: bool = True,
                       overtime_s: float = 0.0) -> RootReply:
        """One root call (`overtime_s` past the wall clock at most). When the conversation outgrows the model's
        window, the older half of the turns goes (the REPL keeps every variable, and a note says so) and the
        call is tried again."""
        while True:
            try:
                return await self.root.reply(messages, self.budget, allow_tools=allow_tools, overtime_s=overtime_s)
            except RootContextFull:
                dropped = self.drop_older_turns(messages)
                if not dropped:
                    raise
                self.record({"type": "history_dropped", "turns": dropped, "messages_left": len(messages)})

    def drop_older_turns(self, messages: list[dict[str, Any]]) -> int:
        """Replace the older half of the turns with one note, in place; returns how many went. A turn is an
        assistant message and what answered it, so a tool call never loses its result; the system prompt,
        the question and the newest turn always stay."""
        head = 3 if self.turns_dropped else 2  # system, question, and the note once there is one
        starts = [i for i in range(head, len(messages)) if messages[i].get("role") == "assistant"]
        if len(starts) < 2:
            return 0
        dropped = len(starts) // 2
        self.turns_dropped += dropped
        note = {"role": "user", "content": HISTORY_DROPPED.format(turns=self.turns_dropped)}
        messages[2:starts[dropped]] = [note]
        return dropped

    async def act(self, reply: RootReply, messages: list[dict[str, Any]], iteration: int) -> str | None:
        """Carry out what the root asked for; return the answer once there is one."""
        if reply.tool_calls:
            for call in reply.tool_calls:
                if call.name == "final_answer":
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": "Answer recorded."})
                    return str(call.arguments.get("answer", ""))
                if call.name == "exec_code" and isinstance(call.arguments.get("code"), str):
                    output = await self.run_code(call.arguments["code"], iteration)
                else:
                    output = f"Unknown tool or bad arguments: {call.name}({call.arguments}). Use exec_code(code)."
                messages.append({"role": "tool", "tool_call_id": call.id, "content": output})
                if self.session.final_answer is not None:
                    return self.session.final_answer
            return None
        if reply.code_blocks:
            outputs = [await self.run_code(code, iteration) for code in reply.code_blocks]
            if self.session.final_answer is not None:
                return self.session.final_answer
            messages.append({"role": "user", "content": "Output:\n" + "\n---\n".join(outputs)})
            return None
        messages.append({"role": "user", "content": NUDGE_NO_ACTION})
        return None

    async def run_code(self, code: str, iteration: int) -> str:
        await self.notify(iteration, "running code")
        outcome = await self.session.exec(code, None, tags={"iteration": iteration})
        report = ExecReport.build(outcome.result, restarted=outcome.restarted, final_answer=outcome.final_answer,
                                  context_changed=outcome.context_note, restored=outcome.restored)
        text = cut_middle(report.text(), OUTPUT_BUDGET_CHARS)
        self.usage.code_blocks += 1
        self.last_output = report.stdout.strip()[-4000:] or self.last_output
        return text

    async def best_effort(self, messages: list[dict[str, Any]], reason: str) -> RLMResult:
        """A limit was hit: ask once more for an answer from what is known, never return nothing."""
        answer = self.last_output
        try:  # one short last call, if the ledger still admits one: a run stopped by the clock gets a grace
            ask = {"role": "user", "content": ANSWER_NOW.format(reason=reason)}
            reply = await self.ask_root([*messages, ask], allow_tools=False, overtime_s=FINAL_ANSWER_GRACE_S)
            self.usage.add_reply(reply)
            answer = reply.text.strip() or answer
        except (RootModelError, BudgetExceeded):
            pass
        return self.finish(answer, "best_effort", f"stopped at {reason}")

    def limit_reached(self) -> str | None:
        """The call tree's wall clock is the run's: the ledger's, which its workers and child RLMs spend too."""
        if self.budget.seconds_left() <= 0:
            return f"the time limit ({self.budget.limits.max_wall_s:g} s, RLM_MAX_WALL_S)"
        return None

    def metadata(self) -> str:
        """What the root may know about the input before reading it: shape, never content."""
        lines = []
        for stored in self.session.contexts.values():
            where = "`context`" if stored.name == "main" else f"`contexts[{stored.name!r}]`"
            line = f"- {where}: {stored.kind}, {stored.chars:,} characters (~{stored.estimated_tokens:,} tokens)"
            if stored.kind == "files":
                ranked = sorted(stored.languages.items(), key=lambda kv: -kv[1])[:6]
                languages = ", ".join(f"{lang} {n}" for lang, n in ranked)
                line += f", {stored.file_count:,} files ({languages})"
            lines.append(line)
        return "\n".join(lines) or "- nothing is loaded; `context` is empty"

    async def notify(self, iteration: int, message: str) -> None:
        await tell(self.on_iteration, iteration, self.limits.max_iterations, message)

    def finish(self, answer: str, status: Literal["final", "best_effort", "failed"],
               reason: str | None = None) -> RLMResult:
        self.usage.elapsed_s = round(time.monotonic() - self.started, 3)
        self.record({"type": "rlm_end", "status": status, "reason": reason, "answer": answer[:4000],
                     "iterations": self.usage.iterations, "root_cost_usd": self.usage.root.cost_usd})
        return RLMResult(answer=answer, status=status, usage=self.usage, reason=reason, spent=self.budget.ledger.used())
