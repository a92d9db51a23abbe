"""See rlm-mcp work with no host and no API key: drive the real server over stdio with the mcp client.

Loads a real codebase (the Python standard library of this interpreter, ~1,700 files, or a path you
pass), then answers questions the way a host model would: with exec_code, printing each step.

    python examples/demo.py            # the stdlib
    python examples/demo.py ~/src/app  # your own repo

It prints how long the first answer took: from `./dev.sh demo` (which records its start in
RLM_DEV_STARTED before setting anything up, so on a fresh clone that is clone to first answer), or
else from the start of this script.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

SCRIPT_STARTED = time.time()

QUESTIONS = [
    (
        "How big is it, and which files are the largest?",
        "print(f'{len(files):,} files, {len(context):,} characters, ~{count_tokens(context):,} tokens')\n"
        "for path in sorted(files, key=lambda p: -files.info(p)['bytes'])[:5]:\n"
        "    print(f\"  {files.info(path)['bytes']:>9,} B  {path}\")",
    ),
    (
        "Where is the class OrderedDict defined?",
        "for path, line, text in grep(r'^class OrderedDict\\b'):\n    print(f'{path}:{line}: {text}')",
    ),
    (
        "Which environment variables does this code read, and how often?",
        "import re, collections\n"
        "keys = collections.Counter(re.findall(r\"os\\.environ(?:\\.get)?[\\[(]\\s*['\\\"]([A-Z0-9_]+)\", context))\n"
        "print(len(keys), 'distinct variables; most read:')\n"
        "for key, count in keys.most_common(8):\n    print(f'  {count:>3}  {key}')",
    ),
    (
        "Which modules swallow exceptions with a bare `except: pass`?",
        "hits = grep(r'except\\s*:\\s*\\n\\s*pass\\b', max_hits=10_000)\n"
        "swallowers = collections.Counter(path for path, _, _ in hits)\n"
        "print(sum(swallowers.values()), 'bare except/pass blocks in', len(swallowers), 'files; worst:')\n"
        "for path, count in swallowers.most_common(5):\n    print(f'  {count:>3}  {path}')",
    ),
]


def first_answer_line(now: float) -> str:
    """How long the first answer took, from the earliest start we know of."""
    started = os.environ.get("RLM_DEV_STARTED", "")
    try:
        return f"First answer {now - float(started):.1f} s after ./dev.sh started (set-up included)"
    except ValueError:
        return f"First answer {now - SCRIPT_STARTED:.1f} s after this script started"


def server_params(root: Path) -> StdioServerParameters:
    script = Path(sys.executable).with_name("rlm-mcp")
    command = str(script) if script.exists() else shutil.which("rlm-mcp") or "rlm-mcp"
    env = {**os.environ, "RLM_ALLOWED_ROOTS": str(root)}
    return StdioServerParameters(command=command, args=[], env=env)


async def main(root: Path) -> None:
    print(f"Starting rlm-mcp over stdio and loading {root} ...")
    async with Client(server_params(root)) as client:
        tools = [tool.name for tool in (await client.list_tools()).tools]
        print(f"Tools: {', '.join(tools)}\n")
        started = time.perf_counter()
        loaded = await client.call_tool("load_context", {"source": [str(root)]})
        if loaded.is_error:
            raise SystemExit(loaded.content[0].text)
        print(f"> load_context({str(root)!r})  [{time.perf_counter() - started:.2f} s]")
        print(loaded.content[0].text, "\n")
        for number, (question, code) in enumerate(QUESTIONS):
            print(f"Q: {question}")
            print("> exec_code:\n" + "\n".join("    " + line for line in code.splitlines()))
            result = await client.call_tool("exec_code", {"code": code})
            print(result.content[0].text, "\n")
            if number == 0:
                print(f"[{first_answer_line(time.time())}]\n")
        status = await client.call_tool("session", {})
        print(status.content[0].text)


if __name__ == "__main__":
    target = Path(sys.argv[1]).expanduser().resolve() if len(sys.argv) > 1 else Path(sysconfig.get_paths()["stdlib"])
    anyio.run(main, target)
