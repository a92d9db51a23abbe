"""Structured results of the MCP tools: their JSON schemas are the tools' output schemas.

What a host's model reads is designed here (measurements in rlm_mcp/results/shaping.py and tests/hosts/): the
structured content -- which Claude Code and Codex pass to their model as JSON instead of the text --
leaves out every field at its default, so fields default to what the common path has, and is cut to the
hosts' output limit. Each model also renders itself as short text, which Gemini CLI and OpenCode show
their model (and Claude Code does for error results).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field, field_serializer

from ..contexts import StoredContext
from ..sandbox import CheckpointStore, ExecResult, RestoreNote
from ..symbols.records import CallSite, Definition
from ..workers import Spent, Usage
from .shaping import RESULT_BUDGET_CHARS, cap_text, fit

CONTEXT_CHANGED = ("set when a live context's files changed since your last call: which ones, and why any left; "
                   "variables computed from the old text may be stale")


class Report(BaseModel):
    """A tool's result: its text for hosts that show only text, its structured content for the rest."""

    cut: dict[str, int] = Field(default_factory=dict, description="set when the result was cut to fit the host's "
                                "tool output limit: characters of a text or items of a list left out, by field")

    def text(self) -> str:
        raise NotImplementedError

    def capped_text(self, max_chars: int = RESULT_BUDGET_CHARS) -> str:
        return cap_text(self.text(), max_chars)

    def structured(self, max_chars: int = RESULT_BUDGET_CHARS) -> dict[str, Any]:
        """What the host's model reads, cut to `max_chars` of JSON (RLM_RESULT_BUDGET_CHARS)."""
        return fit(self.compact(), max_chars)

    def compact(self) -> dict[str, Any]:
        """Every field not at its default (a script reads a missing one as its default: model_validate restores
        it); the common result is then a few fields, which a host's model reads on every call and a client
        validates against the output schema on every call."""
        return self.model_dump(mode="json", exclude_defaults=True)


class FileSizeModel(BaseModel):
    path: str
    bytes: int


class ContextSummary(Report):
    """What load_context returns: sizes and shape, never the content."""

    name: str
    kind: Literal["text", "files"]
    chars: int
    bytes: int
    estimated_tokens: int
    files: int = 0
    languages: dict[str, int] = Field(default_factory=dict, description="files per language")
    largest_files: list[FileSizeModel] = Field(default_factory=list)
    skipped: dict[str, int] = Field(default_factory=dict, description="files left out, by reason")
    too_large_files: list[FileSizeModel] = Field(default_factory=list)
    roots: list[str] = Field(default_factory=list)
    reused: bool = False
    elapsed_s: float
    index_status: str = "none"
    live: bool = Field(False, description="the context follows its files: edits show up in the next call")
    repl_names: str = Field(description="how to reach this context from exec_code")
    session: str = Field("", description="the session handle: pass it as `session` to later calls to keep "
                         "working in this session")

    sandbox: str = Field("", description="where the REPL runs: its isolation backend and why it runs here")

    @classmethod
    def from_stored(cls, stored: StoredContext, index_status: str = "none", session: str = "",
                    sandbox: str = "", live: bool = False) -> ContextSummary:
        data = stored.to_dict()
        access = "context (str), files[path]" if stored.name == "main" else f"contexts[{stored.name!r}]"
        return cls(
            name=stored.name, kind=data["kind"], chars=data["chars"], bytes=data["bytes"],
            estimated_tokens=data["estimated_tokens"], files=data["file_count"], languages=data["languages"],
            largest_files=data["largest_files"], skipped={why: n for why, n in data["skipped"].items() if n},
            too_large_files=data.get("too_large_files", []), roots=data.get("roots", []),
            reused=data.get("reused", False), elapsed_s=data["elapsed_s"], index_status=index_status,
            repl_names=access, session=session, sandbox=sandbox, live=live,
        )

    def text(self) -> str:
        ranked = sorted(self.languages.items(), key=lambda kv: -kv[1])[:8]
        langs = ", ".join(f"{lang} {count}" for lang, count in ranked)
        skipped = ", ".join(f"{why} {count}" for why, count in self.skipped.items() if count) or "nothing"
        lines = [
            f"Loaded context {self.name!r} ({self.kind}): {self.chars:,} chars, ~{self.estimated_tokens:,} tokens, "
            f"{self.files:,} files{' (unchanged, reused)' if self.reused else ''} in {self.elapsed_s:.2f} s.",
            f"In exec_code: {self.repl_names}. Code index: {self.index_status}.",
        ]
        if self.sandbox:
            lines.append(f"REPL: {self.sandbox}.")
        if self.live:
            lines.append("Live: edits to these files show up in the next call (load with live=false for a snapshot).")
        if self.session:
            lines.append(f"Session handle: {self.session!r}: pass session={self.session!r} to exec_code, sub_query, "
                         "find_symbol, rlm_complete and session to keep working in this session.")
        if langs:
            lines.append(f"Languages: {langs}.")
        lines.append(f"Skipped: {skipped}.")
        if self.largest_files:
            lines.append("Largest: " + ", ".join(f"{f.path} ({f.bytes:,} B)" for f in self.largest_files[:5]))
        return "\n".join(lines)


class VariableModel(BaseModel):
    name: str
    type: str
    size: int | None = Field(None, description="len() where the value has one")
    preview: str


SLOW_EXEC_S = 1.0  # the text names the time only from here: a fast exec's "[0.003 s]" is noise to a model
FINAL_ANSWER_TEXT_CHARS = 20_000  # the structured result carries more, up to the result budget (shaping.py)


class ExecReport(Report):
    """What exec_code returns."""

    status: Literal["ok", "error", "timeout", "killed", "sandbox_fault"]
    stdout: str
    stderr: str = ""
    stdout_cut_chars: int = Field(0, description="characters cut from the middle of stdout")
    stderr_cut_chars: int = 0
    error: str | None = None
    variables: list[VariableModel] = Field(default_factory=list, description="variables created or changed")
    elapsed_s: float
    restarted: bool = Field(False, description="the REPL was restarted: contexts re-attached, saved variables "
                            "restored (see `restored`)")
    restored: list[str] = Field(default_factory=list, description="after a restart: variables the checkpoint "
                                "brought back")
    not_restored: dict[str, str] = Field(default_factory=dict, description="after a restart: variables that "
                                         "could not be brought back, and why")
    not_saved: dict[str, str] = Field(default_factory=dict, description="variables this run created or changed "
                                      "that the checkpoint could not keep (a restart would lose them), and why")
    final_answer: str | None = Field(None, description="set when the code called FINAL(...) or FINAL_VAR(...)")
    worker_usage: Usage = Field(default_factory=Usage)
    context_changed: str | None = Field(None, description=CONTEXT_CHANGED)

    @classmethod
    def build(cls, result: ExecResult, *, restarted: bool, final_answer: str | None,
              worker_usage: Usage | None = None, context_changed: str | None = None,
              restored: RestoreNote | None = None) -> ExecReport:
        not_saved = dict(result.checkpoint.unsaved) if result.checkpoint else {}
        if result.checkpoint and result.checkpoint.error:
            not_saved["(all)"] = result.checkpoint.error
        restored = restored or RestoreNote()
        return cls(
            restored=list(restored.restored), not_restored=dict(restored.failed), not_saved=not_saved,
            status=result.status, stdout=result.stdout.text, stderr=result.stderr.text,
            stdout_cut_chars=result.stdout.cut_chars, stderr_cut_chars=result.stderr.cut_chars,
            error=result.error, elapsed_s=round(result.elapsed_s, 3), restarted=restarted,
            variables=[
                VariableModel(name=v.name, type=v.type, size=v.size, preview=v.preview) for v in result.variables
            ],
            final_answer=final_answer, worker_usage=worker_usage or Usage(), context_changed=context_changed,
        )

    def compact(self) -> dict[str, Any]:
        """The structured result without the fields at their defaults (no error, no variables, no restart,
        no final answer, no worker calls): the common result stays three fields, which a host's model reads
        on every call (Claude Code passes structured content to its model) and a client validates against
        the output schema on every call (a small result validates several times faster)."""
        data = super().compact()
        if "worker_usage" in data:
            data["worker_usage"] = self.worker_usage.model_dump(mode="json")  # all its counters, zeros too
        return data

    def text(self) -> str:
        parts = [f"[context changed] {self.context_changed}"] if self.context_changed else []
        if self.stdout:
            parts.append(self.stdout.rstrip("\n"))
        if self.stderr:
            parts.append("[stderr]\n" + self.stderr.rstrip("\n"))
        if self.status != "ok":
            parts.append(f"[{self.status}] {self.error or ''}".rstrip())
        if self.restarted:
            kept = f"variables restored: {', '.join(self.restored)}" if self.restored else "no variables saved"
            parts.append(f"[the REPL was restarted: loaded contexts are attached again; {kept}]")
        if self.not_restored:
            parts.append("[not restored] " + "; ".join(f"{name}: {why}" for name, why in self.not_restored.items()))
        if self.not_saved:
            parts.append("[not saved: a restart would lose] "
                         + "; ".join(f"{name}: {why}" for name, why in self.not_saved.items()))
        if self.variables:
            parts.append("[vars] " + ", ".join(
                f"{v.name}: {v.type}" + (f"[{v.size}]" if v.size is not None else "") for v in self.variables
            ))
        if self.worker_usage.calls:
            usage = self.worker_usage
            cost = "unknown cost" if usage.cost_usd is None else f"${usage.cost_usd:.4f}"
            parts.append(f"[workers] {usage.calls} calls ({usage.cached_calls} cached), "
                         f"{usage.tokens_in + usage.tokens_out:,} tokens, {cost}")
        if self.final_answer is not None:
            answer, more = self.final_answer[:FINAL_ANSWER_TEXT_CHARS], len(self.final_answer) - FINAL_ANSWER_TEXT_CHARS
            cut = f"\n... [{more:,} more characters: see final_answer in the structured result]" if more > 0 else ""
            parts.append(f"[final answer set] {answer}{cut}")
        if self.elapsed_s >= SLOW_EXEC_S:
            parts.append(f"[{self.elapsed_s:.1f} s]")
        return "\n".join(parts) or "(no output)"


class ContextBrief(BaseModel):
    name: str
    kind: str
    chars: int
    files: int
    estimated_tokens: int
    index: str = Field(description="The code index: building (with progress), ready, failed or none.")


class CheckpointBrief(BaseModel):
    """The session's checkpoint: what a restarted REPL gets back, and what it would not."""

    variables: int = Field(description="variables saved")
    bytes: int
    max_bytes: int = Field(description="RLM_CHECKPOINT_MAX_MB")
    not_saved: dict[str, str] = Field(default_factory=dict, description="variables that could not be saved, and why")

    @classmethod
    def of(cls, store: CheckpointStore) -> CheckpointBrief:
        return cls(variables=len(store.sizes), bytes=store.total_bytes, max_bytes=store.max_bytes,
                   not_saved=dict(store.unsaved))

    def text(self) -> str:
        lost = "; ".join(f"{name}: {why}" for name, why in self.not_saved.items())
        return (f"Checkpoint: {self.variables} variables, {self.bytes:,} of {self.max_bytes:,} bytes"
                + (f"; not saved (a restart would lose them): {lost}." if lost else "."))


class SessionLimits(BaseModel):
    """The limits a session runs under, each from its setting (the exec timeout from the sandbox policy)."""

    exec_timeout_s: int | float
    max_output_chars: int
    result_budget_chars: int
    output_why: str = Field(description="what of an exec's output and of a tool result reaches you, and why")
    max_worker_calls: int
    max_cost_usd: int | float
    max_tokens: int
    max_depth: int
    max_wall_s: int | float
    session_idle_s: int | float


class SessionReport(Report):
    """What the session tool returns."""

    session: str
    handle: str = Field("", description="pass it as `session` to work in this session; it expires when idle "
                        "for limits.session_idle_s")
    isolated: bool = Field(True, description="the REPL is isolated: nsjail or WebAssembly (false: RLM_SANDBOX=none)")
    sandbox: str = Field("", description="the isolation backend and why it runs here")
    repl_running: bool = True
    contexts: list[ContextBrief]
    execs: int = 0
    exec_seconds: float = 0.0
    restarts: int = 0
    timeouts: int = 0
    limits: SessionLimits
    worker_usage: Usage = Field(default_factory=Usage)
    spent: Spent = Field(default_factory=Spent, description="the session's ledger: every model call "
                                  "(workers, sub_query, rlm_complete's root, child RLMs), tokens, USD, seconds")
    worker_model: str | None = None
    action: str = "status"
    checkpoint: CheckpointBrief | None = Field(None, description="the REPL variables saved for a restart")

    @field_serializer("spent")
    def _spent_so_far(self, spent: Spent) -> dict[str, Any]:
        """The ledger's non-zero entries: a fresh session has spent nothing worth listing."""
        return {key: value for key, value in spent.items() if value}

    def text(self) -> str:
        names = ", ".join(f"{c.name} ({c.chars:,} chars, {c.files} files)" for c in self.contexts) or "none"
        usage = self.worker_usage
        cost = "unknown" if usage.cost_usd is None else f"${usage.cost_usd:.4f}"
        return (
            f"Session {self.session} ({self.sandbox if self.isolated else 'NOT ISOLATED'}; action: {self.action}). "
            f"Contexts: {names}. Execs: {self.execs} ({self.exec_seconds:.2f} s, {self.timeouts} timeouts, "
            f"{self.restarts} restarts). Workers: {usage.calls} calls, {usage.tokens_in + usage.tokens_out:,} tokens, "
            f"cost {cost} (model: {self.worker_model or 'not configured'}). All model calls: "
            f"{self._spent_so_far(self.spent) or 'none'}. Limits: {self.limits.model_dump()}."
            + (f" Handle: {self.handle!r} (pass it as `session`)." if self.handle else "")
            + (f" {self.checkpoint.text()}" if self.checkpoint else "")
        )


class AnswerModel(BaseModel):
    text: str
    error: str | None = None
    model: str
    cached: bool = False


class SubQueryReport(Report):
    """What sub_query returns: one answer per prompt (or per chunk), in order."""

    answers: list[AnswerModel]
    backend: str = Field(description="what answered: litellm, openai-compatible, assistant-cli, or sampling "
                         "(the client's own model)")
    usage: Usage = Field(default_factory=Usage)
    context_changed: str | None = Field(None, description=CONTEXT_CHANGED)

    def text(self) -> str:
        changed = f"[context changed] {self.context_changed}\n" if self.context_changed else ""
        if len(self.answers) == 1:
            answer = self.answers[0]
            return changed + (answer.text if answer.error is None else f"[error] {answer.error}")
        return changed + "\n\n".join(f"[{i}] {a.text if a.error is None else '[error] ' + a.error}"
                            for i, a in enumerate(self.answers))


class _RunUsage(Protocol):
    iterations: int
    code_blocks: int
    root: Usage
    elapsed_s: float


class _Run(Protocol):
    """What an RLM run (rlm/loop.py's RLMResult) tells its report."""

    answer: str
    status: Literal["final", "best_effort", "failed"]
    reason: str | None
    usage: _RunUsage
    spent: Spent


class RLMReport(Report):
    """What rlm_complete returns: the answer, whether it is final or the best so far, and what it cost."""

    answer: str
    status: Literal["final", "best_effort", "failed"]
    reason: str | None = None
    iterations: int
    code_blocks: int
    root_calls: int
    root_tokens: int
    root_cost_usd: float | None
    worker_usage: Usage = Field(default_factory=Usage)
    spent: Spent = Field(default_factory=Spent, description="the session's ledger after the run: every "
                                  "model call so far, root and child roots included")
    elapsed_s: float
    trajectory: str | None = None

    @classmethod
    def from_run(cls, run: _Run, *, worker_usage: Usage, trajectory: str | None) -> RLMReport:
        usage = run.usage
        return cls(answer=run.answer, status=run.status, reason=run.reason, iterations=usage.iterations,
                   code_blocks=usage.code_blocks, root_calls=usage.root.calls, root_tokens=usage.root.tokens,
                   root_cost_usd=usage.root.cost_usd, worker_usage=worker_usage, spent=run.spent,
                   elapsed_s=usage.elapsed_s, trajectory=trajectory)

    def text(self) -> str:
        note = "" if self.status == "final" else f"\n[{self.status}: {self.reason}]"
        cost = "unknown" if self.root_cost_usd is None else f"${self.root_cost_usd:.4f}"
        return (f"{self.answer}{note}\n[{self.iterations} iterations, {self.code_blocks} code blocks, "
                f"root cost {cost}, {self.worker_usage.calls} worker calls, {self.elapsed_s:.1f} s]")


class SymbolReport(Report):
    """What find_symbol returns: definitions (find, outline) or call sites (references)."""

    op: Literal["find", "outline", "references"]
    results: list[Definition] | list[CallSite]
    note: str | None = Field(None, description="Set when the results are partial (a pattern/kind query while the "
                             "index builds) and how far the build has come, or when `limit` cut them: how many "
                             "there are and how to get all.")
    context_changed: str | None = Field(None, description=CONTEXT_CHANGED)

    def text(self) -> str:
        note = f"({self.note})\n" if self.note else ""
        if self.context_changed:
            note = f"[context changed] {self.context_changed}\n" + note
        if not self.results:
            return note + "No matches."
        if self.op == "references":
            return note + "\n".join(f"{r.path}:{r.line}: {r.text}" for r in self.results if isinstance(r, CallSite))
        return note + "\n".join(f"{s.path}:{s.start_line}-{s.end_line} {s.kind} {s.qualname}  {s.signature}"
                                for s in self.results if isinstance(s, Definition))
