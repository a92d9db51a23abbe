"""The words rlm-mcp says to host models: server instructions and the RLM playbook prompt.

Kept in one place so tool descriptions, instructions and the playbook do not drift apart.
"""

import json

SERVER_INSTRUCTIONS = """\
rlm-mcp turns you into a Recursive Language Model for inputs far larger than your context window.
Load a whole codebase, directory or huge text ONCE with load_context; it lives in a sandboxed,
persistent Python REPL as `context` / `files[path]`. Then answer questions by running code with
exec_code (grep, parse, count, chunk) and by handing small pieces to worker models with
llm_query_batched. Prefer this over reading files one at a time whenever the question needs a
global view (all callers of X, every place config key Y is read, patterns across many files or a
large log). Keep printed output small; store intermediate results in variables. load_context
returns a session handle: pass it as `session` on every later call so your work stays in that
session (new_session=true starts a separate one for a second analysis)."""

PLAYBOOK = """\
# RLM playbook

You are the root model of a Recursive Language Model. The input is too large to read, so you
never read it whole: you write code that reads it for you.

1. Load once. `load_context(source=["path/to/repo"])` (or `text=...` for a document or log).
   The summary tells you size, file count and languages. Nothing is in your context yet.
   It also returns a session handle: pass it as `session` to every later call (exec_code,
   sub_query, find_symbol, rlm_complete, session) so you keep working in the same REPL. For a
   second, separate analysis, `load_context(..., new_session=true)` gives a second handle. A
   handle expires when idle; if a call says it expired, load again and use the new handle.
2. Probe before you plan. In `exec_code`: `len(context)`, `list(files)[:50]`, `files.info(path)`,
   `print(context[:2000])`, `SHOW_VARS()`. Learn the shape (headers, formats, where things live).
3. Filter with code, not with your eyes. `grep(r"pattern")` returns (path, line, text) hits;
   `find_symbol("Name")`, `outline("pkg/mod.py")` and `references("func")` use the code index;
   `re`, `json`, `ast` and slicing work on `context` and `files[path]`. Narrow a 10M-token input
   to the few thousand characters that matter. These helpers cut long lists (grep at 200 hits,
   find_symbol at 50, references at 200) and say so on stderr with the full count: pass
   `max_hits=None` to grep and `limit=None` to the others before you count or loop over "all".
4. Map with workers when judgement is needed. Split the filtered material with
   `chunk(text, size=20_000)` and call `llm_query_batched([f"...{piece}" for piece in pieces])`:
   answers come back in order, concurrently. One `llm_query(prompt)` for a single question;
   `rlm_query(prompt, context=piece)` when a piece itself needs this whole strategy.
   Ask precise questions and request a fixed output format you can parse.
5. Aggregate in code. Parse worker answers, count, deduplicate and rank in Python; keep results
   in variables, not in printed output.
6. Keep prints small. Output beyond the budget is cut in the middle. Print summaries, counts and
   the top N, never whole files or the whole context.
7. Answer from a variable. Build the final answer in a variable, verify it (spot-check a few
   hits), then `FINAL(answer)` or `FINAL_VAR("answer")` and report it.

Budgets (worker calls, tokens, USD, depth) are enforced by the server; `session()` shows what
is used and left. If a call says a budget is exhausted, work with what you have or ask the user.
"""

SKILL_PATH = "plugin/skills/rlm-playbook/SKILL.md"  # the Claude Code plugin this repository serves
SKILL_DESCRIPTION = (
    "Use when a question needs a global view of a codebase, log dump or document set too large to read file "
    "by file (every caller of X, every place config key Y is read, patterns across thousands of files): load it "
    "once into the rlm-mcp server's sandboxed REPL and answer with code and worker models."
)


def skill_markdown() -> str:
    """The Claude Code skill that carries the playbook, generated from it so the two cannot drift apart;
    tests/server/test_plugin.py checks that the checked-in SKILL_PATH is this text."""
    return (
        f"---\nname: rlm-playbook\ndescription: {json.dumps(SKILL_DESCRIPTION)}\n---\n\n"
        f"<!-- Generated from rlm_mcp/server/playbook.py: python -m rlm_mcp.server.playbook > {SKILL_PATH} -->\n\n"
        f"The tools named below are the rlm-mcp plugin's MCP server (`rlm`).\n\n{PLAYBOOK}"
    )


if __name__ == "__main__":
    print(skill_markdown(), end="")
