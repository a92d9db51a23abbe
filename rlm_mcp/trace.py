"""`rlm-mcp trace LOG`: render a trajectory (JSONL) as one self-contained HTML page.

No network, no build step, no JavaScript framework: the page is plain HTML with inline CSS and an
inline SVG chart of cumulative cost, so it opens anywhere, including from an email attachment.
Unknown event types are shown raw rather than dropped: the log format may grow.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:18px 28px}header h1{margin:0 0 6px;font-size:20px}
.totals{display:flex;gap:22px;flex-wrap:wrap;font-size:13px;opacity:.9}
main{max-width:1100px;margin:0 auto;padding:18px 28px}
.event{background:#fff;border:1px solid #dde1e8;border-radius:8px;margin:10px 0;padding:10px 14px}
.event h3{margin:0 0 6px;font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:#5b6475}
.code h3{color:#0b6bcb}.worker_call h3{color:#8a4baf}.root_reply h3{color:#1f7a4d}.rlm_end h3{color:#b3261e}
pre{background:#f3f4f7;border-radius:6px;padding:8px 10px;overflow-x:auto;white-space:pre-wrap;margin:6px 0;
font:12px/1.4 ui-monospace,Menlo,monospace}
.meta{font-size:12px;color:#5b6475}.error{color:#b3261e;font-weight:600}
svg{background:#fff;border:1px solid #dde1e8;border-radius:8px}
"""


def read_events(path: Path) -> list[dict[str, Any]]:
    """Events of a JSONL log; a damaged line becomes an `unreadable` event instead of an exception."""
    events = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            event = {"type": "unreadable", "line": number, "text": line[:500]}
        events.append(event if isinstance(event, dict) else {"type": "unreadable", "line": number})
    return events


def render(events: list[dict[str, Any]], title: str = "rlm-mcp trajectory") -> str:
    totals = summarize(events)
    body = "\n".join(render_event(event) for event in events)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'><title>{esc(title)}</title>"
        f"<style>{STYLE}</style></head><body><header><h1>{esc(title)}</h1><div class=totals>"
        + "".join(f"<span><b>{esc(k)}</b>: {esc(v)}</span>" for k, v in totals.items())
        + f"</div></header><main><h2>Cost over time</h2>{cost_chart(events)}"
        f"<h2>Timeline</h2>{body}</main></body></html>"
    )


def summarize(events: Iterable[dict[str, Any]]) -> dict[str, str]:
    events = list(events)
    workers = [e for e in events if e.get("type") == "worker_call"]
    costs = [c for c in (_cost(e) for e in events) if c is not None]
    unknown = any(e.get("type") in ("worker_call", "root_reply") and _cost(e) is None for e in events)
    end = next((e for e in reversed(events) if e.get("type") == "rlm_end"), {})
    start = next((e for e in events if e.get("type") == "rlm_start"), {})
    totals = {
        "events": str(len(events)),
        "code blocks": str(sum(e.get("type") == "code" for e in events)),
        "worker calls": f"{len(workers)} ({sum(bool(e.get('cached')) for e in workers)} cached, "
                        f"{sum(bool(e.get('error')) for e in workers)} failed)",
        "tokens": f"{sum(_int(e.get('tokens_in')) + _int(e.get('tokens_out')) for e in events):,}",
        "cost": f"${sum(costs):.4f}" + (" + unknown" if unknown else ""),
    }
    if start:
        totals["root model"] = str(start.get("model", "?"))
    if end:
        totals["status"] = str(end.get("status", "?"))
    return totals


def render_event(event: dict[str, Any]) -> str:
    kind = str(event.get("type", "event"))
    renderer = RENDERERS.get(kind, _raw)
    return f"<section class='event {esc(kind)}'><h3>{esc(kind.replace('_', ' '))}</h3>{renderer(event)}</section>"


def _start(event: dict[str, Any]) -> str:
    question = f"<p><b>Question:</b> {esc(event.get('query', ''))}</p>"
    return question + f"<p class=meta>root model {esc(event.get('model'))}</p>"


def _root(event: dict[str, Any]) -> str:
    meta = (f"iteration {esc(event.get('iteration'))} · {_int(event.get('tokens_in')):,} in / "
            f"{_int(event.get('tokens_out')):,} out · {_money(event)} · {esc(event.get('tool_calls', 0))} tool calls")
    return f"<p class=meta>{meta}</p>" + (f"<pre>{esc(event['text'])}</pre>" if event.get("text") else "")


def _code(event: dict[str, Any]) -> str:
    status = str(event.get("status", "ok"))
    parts = [f"<p class=meta>iteration {esc(event.get('iteration', '-'))} · status "
             f"<span class='{'error' if status != 'ok' else ''}'>{esc(status)}</span> · "
             f"{float(event.get('elapsed_s') or 0):.3f} s</p>", f"<pre>{esc(event.get('code', ''))}</pre>"]
    if event.get("stdout"):
        parts.append(f"<pre>{esc(event['stdout'])}</pre>")
    if event.get("stderr"):
        parts.append(f"<pre class=error>{esc(event['stderr'])}</pre>")
    return "".join(parts)


def _worker(event: dict[str, Any]) -> str:
    meta = (f"{esc(event.get('model'))} · prompt {_int(event.get('prompt_chars')):,} chars → answer "
            f"{_int(event.get('response_chars')):,} chars · {_int(event.get('tokens_in')):,}/"
            f"{_int(event.get('tokens_out')):,} tokens · {_money(event)} · "
            f"{float(event.get('latency_s') or 0):.2f} s" + (" · cached" if event.get("cached") else ""))
    error = f"<p class=error>{esc(event['error'])}</p>" if event.get("error") else ""
    return f"<p class=meta>{meta}</p>{error}"


def _end(event: dict[str, Any]) -> str:
    reason = f" ({esc(event['reason'])})" if event.get("reason") else ""
    return f"<p><b>{esc(event.get('status'))}</b>{reason}</p><pre>{esc(event.get('answer', ''))}</pre>"


def _dropped(event: dict[str, Any]) -> str:
    return (f"<p class=meta>{_int(event.get('turns')):,} older turns dropped to fit the root model's context "
            f"window; {_int(event.get('messages_left')):,} messages left (REPL state kept)</p>")


def _raw(event: dict[str, Any]) -> str:
    return f"<pre>{esc(json.dumps(event, indent=2, ensure_ascii=False)[:5000])}</pre>"


RENDERERS = {"rlm_start": _start, "root_reply": _root, "code": _code, "worker_call": _worker,
             "history_dropped": _dropped, "rlm_end": _end}


def cost_chart(events: list[dict[str, Any]], width: int = 1040, height: int = 160) -> str:
    """Cumulative known cost against event index, as an inline SVG polyline."""
    points, total = [(0, 0.0)], 0.0
    for index, event in enumerate(events, 1):
        cost = _cost(event)
        if cost:
            total += cost
            points.append((index, total))
    if total == 0:
        return "<p class=meta>No priced calls in this run.</p>"
    count = max(len(events), 1)
    coordinates = " ".join(
        f"{10 + (width - 20) * x / count:.1f},{height - 10 - (height - 30) * y / total:.1f}" for x, y in points
    )
    return (f"<svg width={width} height={height} role=img aria-label='cumulative cost'>"
            f"<polyline fill=none stroke='#8a4baf' stroke-width=2 points='{coordinates}'/>"
            f"<text x=12 y=16 font-size=12>${total:.4f} total</text></svg>")


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _cost(event: dict[str, Any]) -> float | None:
    value = event.get("cost_usd")
    return float(value) if isinstance(value, int | float) else None


def _money(event: dict[str, Any]) -> str:
    cost = _cost(event)
    return "cost unknown" if cost is None else f"${cost:.5f}"


def write_trace(log: Path, output: Path | None = None) -> Path:
    output = output or log.with_suffix(".html")
    output.write_text(render(read_events(log), title=f"rlm-mcp trajectory · {log.name}"), encoding="utf-8")
    return output
