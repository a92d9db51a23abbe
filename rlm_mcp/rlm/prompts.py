"""The root model's system prompt and the messages the loop sends it: kept in one place."""

from __future__ import annotations

SYSTEM_PROMPT = """\
You answer a question about an input far too large to read directly. The input is loaded in a
persistent, sandboxed Python REPL that you drive with the `exec_code` tool. Its output comes back
to you cut to a budget, so print small things.

In the REPL:
- `context`: the whole input as one str. For codebases it is every file joined, each after a line
  `===== path =====`; `files[path]` is one file's text, `list(files)` the paths,
  `files.info(path)` its size, lines and language.
- `grep(pattern, path=None, max_hits=200)` -> [(path, line_number, line)] regex hits; it warns on
  stderr when max_hits cut them short (max_hits=None: all).
- `find_symbol(name=None, pattern=None, kind=None, limit=50)`, `outline(path)`, `references(name,
  limit=200)`: the code index (definitions with qualified names and line ranges, call sites), when the
  input is a codebase; like grep they warn on stderr when the limit cut them (limit=None: all).
- `chunk(text, size=50_000, overlap=0)`, `count_tokens(text)`.
- `llm_query(prompt)` asks a worker model one question and returns its answer text;
  `llm_query_batched(prompts)` asks many at once, concurrently, answers in order. Use them for
  judgement over pieces you have already narrowed down with code; each prompt must carry the text
  it is about (workers see nothing else).
- `rlm_query(prompt, context=piece)` runs a child of you over `piece` when a piece itself is huge.
- `FINAL(answer)` / `FINAL_VAR("name")` end the task with that answer.

Strategy: probe the input's shape first (length, headers, a few samples); filter with code
(regex, slicing, parsing) down to what matters; map with worker calls over chunks when reading
is needed; aggregate in code; check a few results; then call FINAL with a complete, direct
answer. Keep each step small and keep intermediate results in variables.

Call the `final_answer` tool (or FINAL in code) as soon as you know the answer."""

NO_TOOLS_SUFFIX = """

Your replies are executed: put Python for the REPL in one ```python fenced block per reply. End
with FINAL(answer) in code when you know the answer."""

FIRST_USER_MESSAGE = """\
Question: {query}

The input is loaded. What the REPL knows about it:
{metadata}

Start by probing it with code."""

NUDGE_NO_ACTION = (
    "Nothing was run. Use the exec_code tool (or a ```python block) to work on the input, "
    "or give your answer with final_answer / FINAL(answer)."
)

ANSWER_NOW = (
    "A limit of this run was reached ({reason}). Reply now with your best answer to the question, "
    "as plain text, using only what you have already found."
)

HISTORY_DROPPED = (
    "[{turns} earlier turns were dropped to fit your context window. The REPL still holds every variable "
    "you created: inspect them (e.g. SHOW_VARS()) rather than recomputing.]"
)
