"""A stand-in for `claude`, `codex` and `gemini`: copied onto PATH under those names by the tests.

It speaks the JSON each CLI documents for its headless mode (claude `--output-format json`, codex
`exec --json`, gemini `--output-format json`), reads the prompt on stdin, and behaves as the prompt
asks -- the environment cannot carry test switches, since the backend passes only an allow-list:
  "CLI:is_error"        the CLI's own error ("Not logged in · Please run /login")
  "CLI:overloaded"      a transient error (HTTP 529), every time
  "CLI:overloaded-once" a transient error the first time this prompt is seen, then an answer
  "CLI:garbage"         output that is not JSON, exit 0
  "CLI:exit"            a message on stderr, exit 3
  "CLI:hang"            starts a child and both sleep (their pids go to hang.pids)
  "CLI:slow"            answers after 0.3 s
  "CLI:flood"           17 MiB on stdout, more than the backend reads
  "CLI:context-full"    the CLI's error for a prompt longer than the model's window
  "Question:" (a root-model turn) a fenced code block that uses the REPL and a worker call
  anything else         "echo: <prompt>"
Every call appends what it saw (argv, cwd and its contents and mode, environment, timing) to
calls.jsonl next to this file.
"""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FLAVOR = Path(sys.argv[0]).name
LOGIN_ERROR = "Not logged in · Please run /login"


def main() -> int:
    started = time.time()
    prompt = sys.stdin.read()
    cwd = Path.cwd()
    record = {"flavor": FLAVOR, "argv": sys.argv[1:], "cwd": str(cwd), "cwd_entries": sorted(os.listdir(cwd)),
              "cwd_mode": oct(cwd.stat().st_mode & 0o777), "env": dict(os.environ), "prompt": prompt,
              "pid": os.getpid(), "pgid": os.getpgid(0), "start": started}
    code = behave(prompt)
    record["end"] = time.time()
    with open(HERE / "calls.jsonl", "a") as log:
        log.write(json.dumps(record) + "\n")
    return code


def behave(prompt: str) -> int:
    if "CLI:hang" in prompt:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        (HERE / "hang.pids").write_text(f"{os.getpid()} {child.pid}")
        time.sleep(300)
    if "CLI:garbage" in prompt:
        print("Welcome! <html>this is not json</html>")
        return 0
    if "CLI:exit" in prompt:
        print("boom: the CLI crashed", file=sys.stderr)
        return 3
    if "CLI:is_error" in prompt:
        return error(LOGIN_ERROR, None)
    if "CLI:context-full" in prompt:
        return error("Prompt is too long", 400)
    if "CLI:flood" in prompt:
        sys.stdout.write("x" * (17 << 20))
        return 0
    if "CLI:overloaded" in prompt and not ("-once" in prompt and seen_before(prompt)):
        return error("API Error: 529 Overloaded", 529)
    if "CLI:slow" in prompt:
        time.sleep(0.3)
    return answer(reply_to(prompt))


def reply_to(prompt: str) -> str:
    if "Question:" in prompt:  # a root-model turn: answer in the fenced-code protocol
        code = "FINAL(f'root read {len(context)} chars; worker said ' + llm_query('inner'))"
        return f"Let me look.\n```python\n{code}\n```"
    return f"echo: {prompt}"


def seen_before(prompt: str) -> bool:
    marker = HERE / f"seen-{hashlib.sha256(prompt.encode()).hexdigest()[:16]}"
    if marker.exists():
        return True
    marker.touch()
    return False


def answer(text: str) -> int:
    if FLAVOR == "claude":
        print(json.dumps({"type": "result", "subtype": "success", "is_error": False, "result": text,
                          "total_cost_usd": 0.00042, "session_id": "s-1", "num_turns": 1,
                          "usage": {"input_tokens": 11, "cache_creation_input_tokens": 2,
                                    "cache_read_input_tokens": 1, "output_tokens": 7}}))
    elif FLAVOR == "codex":
        # As codex 0.171 does: a non-fatal error item and a reconnect notice before the answer.
        notice = {"type": "error", "message": "Reconnecting... 1/5 (stream disconnected before completion)"}
        metadata = {"id": "i9", "type": "error", "message": "Model metadata for `x` not found. Defaulting to fallback"}
        for event in ({"type": "thread.started", "thread_id": "t-1"},
                      {"type": "item.completed", "item": metadata}, {"type": "turn.started"}, notice,
                      {"type": "item.completed", "item": {"id": "i0", "type": "reasoning", "text": "thinking"}},
                      {"type": "item.completed", "item": {"id": "i1", "type": "agent_message", "text": text}},
                      {"type": "turn.completed",
                       "usage": {"input_tokens": 14, "cached_input_tokens": 0, "output_tokens": 7}}):
            print(json.dumps(event))
    else:
        print(json.dumps({"session_id": "s-1", "response": text, "stats": {"models": {
            "gemini-2.5-flash": {"api": {"totalRequests": 1, "totalErrors": 0, "totalLatencyMs": 5},
                                 "tokens": {"input": 14, "prompt": 14, "candidates": 5, "total": 21, "cached": 0,
                                            "thoughts": 2, "tool": 0}}}}}, indent=2))
    return 0


def error(message: str, status: int | None) -> int:
    if FLAVOR == "claude":
        print(json.dumps({"type": "result", "subtype": "success", "is_error": True, "result": message,
                          "api_error_status": status, "total_cost_usd": 0,
                          "usage": {"input_tokens": 0, "output_tokens": 0}}))
    elif FLAVOR == "codex":
        print(json.dumps({"type": "thread.started", "thread_id": "t-1"}))
        print(json.dumps({"type": "turn.started"}))
        print(json.dumps({"type": "error", "message": message}))
        print(json.dumps({"type": "turn.failed", "error": {"message": message}}))
    else:  # as gemini 0.61 does: the error object on stderr, its "code" the exit code unless HTTP's
        error_body = {"type": "Error", "message": message, "code": status or 41}
        print(json.dumps({"session_id": "s-1", "error": error_body}, indent=2), file=sys.stderr)
        return 41
    return 1


if __name__ == "__main__":
    sys.exit(main())
