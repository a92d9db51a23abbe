"""`rlm-mcp trace`: a trajectory becomes one self-contained page that real headless Chromium renders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from rlm_mcp.trace import read_events, render, write_trace

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
EVENTS = [
    {"type": "rlm_start", "query": "Which handlers read DB_URL?", "model": "openai/gpt-4o"},
    {"type": "root_reply", "iteration": 1, "text": "Let me grep.", "tool_calls": 1, "tokens_in": 900,
     "tokens_out": 40, "cost_usd": 0.0031},
    {"type": "code", "iteration": 1, "code": "hits = grep('DB_URL')\nprint('<script>alert(1)</script>')",
     "status": "ok", "stdout": "<script>alert(1)</script>\n", "stderr": "", "elapsed_s": 0.012},
    {"type": "worker_call", "model": "openai/gpt-4o-mini", "prompt_chars": 20000, "response_chars": 120,
     "tokens_in": 5000, "tokens_out": 30, "cost_usd": 0.00077, "latency_s": 0.8, "cached": False, "error": None},
    {"type": "worker_call", "model": "ollama/llama3.2", "prompt_chars": 300, "response_chars": 0,
     "tokens_in": 0, "tokens_out": 0, "cost_usd": None, "latency_s": 30.0, "cached": False,
     "error": "timed out after 30 s"},
    {"type": "history_dropped", "turns": 6, "messages_left": 9},
    {"type": "something_new", "detail": 1},
    {"type": "rlm_end", "status": "final", "answer": "app/config.py:12 and jobs/sync.py:40", "iterations": 1},
]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "run.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in EVENTS) + "\n{broken line\n")
    return path


def test_page_is_self_contained_and_escaped(log: Path) -> None:
    page = render(read_events(log))
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)" in page
    assert "http://" not in page and "https://" not in page and "<link" not in page
    assert "2 (0 cached, 1 failed)" in page
    assert "+ unknown" in page  # the unpriced call is not counted as free
    assert "something_new" in page and "unreadable" in page
    assert "timed out after 30 s" in page and "app/config.py:12" in page
    assert "6 older turns dropped" in page


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(chromium() is None and not os.environ.get("CI"),
                    reason="Debian's chromium is not installed (./dev.sh test installs it; on CI this fails)")
def test_page_renders_in_headless_chromium(log: Path, tmp_path: Path) -> None:
    page = write_trace(log)
    profile = tmp_path / "profile"
    dom = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Which handlers read DB_URL?" in dom.stdout and "Cost over time" in dom.stdout
    assert "<polyline" in dom.stdout
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "trace.png"
    shot = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1200,1400",
                           f"--screenshot={screenshot}", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0, shot.stderr[-2000:]
    data = screenshot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000  # a blank page compresses to a few KB
