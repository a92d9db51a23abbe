"""A scripted stand-in for the model behind an agent host (Claude Code, Codex CLI), over real HTTP.

The host CLI is pointed at it (`ANTHROPIC_BASE_URL` for Claude Code, a custom provider `base_url` for
Codex) and believes it talks to its model. The endpoint plays a script of turns -- call this tool with
these arguments, then that one, then answer -- and records every request, so a test can assert what the
host sent its model: which tools it offered, and exactly what our tool results looked like on arrival.

Which turn to play is read from the conversation itself (the number of model turns it already holds), so
side requests a host makes on its own (titles, summaries, warm-ups: no tools offered) never shift the
script; they get a short text reply. A turn names tools by their own name (`exec_code`); the endpoint
finds the host's spelling among the offered tools (`mcp__rlm__exec_code`,
`mcp__plugin_rlm-mcp_rlm__exec_code`, ...). Arguments may be a function of the results seen so far, e.g.
to pass on the session handle that `load_context` returned.

APIs spoken: Anthropic Messages (`POST /v1/messages`, streamed as SSE or not; `count_tokens`) for Claude Code
and OpenCode, the OpenAI Responses API (`POST /v1/responses`, streamed) for Codex, and the Gemini API
(`:streamGenerateContent`, `:generateContent`, `:countTokens`) for Gemini CLI. Where a host defers our tools
(Claude Code lists them by name and loads their schemas through its `ToolSearch` tool), the endpoint loads
them first, as a model would; those turns do not count as the script's. Also runnable as a process:

    python tests/fakes/model_endpoint.py --port 8098   # answers every turn with text
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.openai_server import LocalService, _Server

ESTIMATED_CHARS_PER_TOKEN = 4
TOOL_SEARCH = "ToolSearch"  # Claude Code's loader of deferred tools: its turns are the host's, not the script's


@dataclass(frozen=True)
class ToolResult:
    """One tool result as the host handed it to its model: the tool's name and the text the model reads."""

    tool: str
    text: str
    is_error: bool = False

    @property
    def body(self) -> str:
        """The text without the notes a host appends (Claude Code: `<system-reminder>` blocks)."""
        return re.sub(r"\s*<system-reminder>.*?</system-reminder>\s*", "", self.text, flags=re.DOTALL).strip()

    def json(self) -> Any:
        """The body parsed as JSON (what Claude Code sends when a tool returns structured content)."""
        return json.loads(self.body)

    def json_after(self, marker: str) -> Any:
        """The JSON that follows a host's own preamble (Codex: "Wall time: ...\nOutput:\n{...}")."""
        return json.loads(self.body[self.body.index(marker) + len(marker):])

    def first_object(self) -> dict[str, Any]:
        """The first JSON object in the body, whatever a host put before it."""
        return json.JSONDecoder().raw_decode(self.body[self.body.index("{"):])[0]


@dataclass(frozen=True)
class Seen:
    """The conversation a request carries, reduced to what a script needs."""

    model_turns: int
    results: list[ToolResult]
    tools: list[str]
    system: str
    user_text: str
    deferred: list[str] = field(default_factory=list)  # tools named but not yet loaded (Claude Code's ToolSearch)

    def last(self, tool: str) -> ToolResult:
        found = [r for r in self.results if r.tool == tool or r.tool.endswith("_" + tool)]
        if not found:
            raise LookupError(f"no result of {tool!r} in the conversation yet: {[r.tool for r in self.results]}")
        return found[-1]


Arguments = dict[str, Any] | Callable[[Seen], dict[str, Any]]


@dataclass(frozen=True)
class Call:
    tool: str
    arguments: Arguments = field(default_factory=dict)


@dataclass(frozen=True)
class Turn:
    """One reply of the model: some text (or a function of the results so far), then tool calls (none: the answer)."""

    text: str | Callable[[Seen], str] = ""
    calls: tuple[Call, ...] = ()

    @classmethod
    def call(cls, tool: str, arguments: Arguments | None = None, text: str = "") -> Turn:
        return cls(text=text, calls=(Call(tool, arguments or {}),))


@dataclass
class Recorded:
    path: str
    body: dict[str, Any]
    seen: Seen
    scripted: bool  # a turn of the script answered it (False: a side request, or past the script's end)


class ScriptedModel(LocalService):
    """Context manager: `with ScriptedModel([Turn.call("exec_code", {...}), Turn("done")]) as model: model.url`."""

    def __init__(self, script: list[Turn] | None = None, *, port: int = 0, side_reply: str = "ok",
                 model_name: str = "claude-scripted") -> None:
        self.script = list(script or [])
        self.side_reply = side_reply
        self.model_name = model_name
        self.requests: list[Recorded] = []
        self.errors: list[str] = []  # script failures (unknown tool, bad reference): the host saw an error reply
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.server = _Server(("127.0.0.1", port), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, name="scripted-model", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    # What tests read -------------------------------------------------------------------------------------

    def scripted(self) -> list[Recorded]:
        return [r for r in self.requests if r.scripted]

    def final(self) -> Seen:
        """The last scripted request: the whole conversation, every tool result in it."""
        scripted = self.scripted()
        assert scripted, f"the host never asked the scripted model (requests: {[r.path for r in self.requests]})"
        return scripted[-1].seen

    # Playing the script ------------------------------------------------------------------------------------

    def next_turn(self, seen: Seen) -> tuple[Turn, bool]:
        """The turn for this conversation, with its arguments resolved and tool names spelled as offered."""
        if not seen.tools or seen.model_turns >= len(self.script):
            return Turn(self.side_reply), False
        turn = self.script[seen.model_turns]
        missing = [call.tool for call in turn.calls if not self._is_offered(call.tool, seen.tools)]
        if missing and TOOL_SEARCH in seen.tools:  # load the deferred schemas first, as a model would
            wanted = {self._offered(c.tool, seen.deferred) for t in self.script for c in t.calls
                      if self._is_offered(c.tool, seen.deferred)}
            return Turn(calls=(Call(TOOL_SEARCH, {"query": "select:" + ",".join(sorted(wanted))}),)), True
        calls = tuple(Call(self._offered(call.tool, seen.tools),
                           call.arguments(seen) if callable(call.arguments) else call.arguments)
                      for call in turn.calls)
        return Turn(turn.text(seen) if callable(turn.text) else turn.text, calls), True

    @staticmethod
    def _spellings(tool: str, tools: list[str]) -> list[str]:
        """How a host spells our tool: mcp__rlm__x (Claude Code, Codex), mcp_rlm_x (Gemini CLI), rlm_x (OpenCode)."""
        if tool in tools:
            return [tool]
        return [t for t in tools if t.endswith("__" + tool)] or [t for t in tools if t.endswith("_" + tool)]

    @classmethod
    def _is_offered(cls, tool: str, tools: list[str]) -> bool:
        return bool(cls._spellings(tool, tools))

    @classmethod
    def _offered(cls, tool: str, tools: list[str]) -> str:
        matches = cls._spellings(tool, tools)
        if len(matches) != 1:
            raise LookupError(f"tool {tool!r}: {len(matches)} offered tools match ({matches or tools})")
        return matches[0]

    def _play(self, path: str, body: dict[str, Any], seen: Seen) -> Turn:
        try:
            turn, scripted = self.next_turn(seen)
        except Exception as error:  # a broken script must show in the test, not hang the host
            with self.lock:
                self.errors.append(f"{type(error).__name__}: {error}")
            turn, scripted = Turn(f"[scripted model error] {error}"), False
        with self.lock:
            self.requests.append(Recorded(path, body, seen, scripted))
        return turn

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        model = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:  # connectivity probes
                self._json(200, {})

            def do_GET(self) -> None:
                self._json(200, {"data": [{"id": model.model_name, "type": "model"}], "models": []})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)) or 0)
                body = json.loads(raw or b"{}")
                path = self.path.split("?")[0]
                if path.endswith("/messages/count_tokens"):
                    return self._json(200, {"input_tokens": estimate_tokens(body)})
                if path.endswith("/messages"):
                    turn = model._play(path, body, anthropic_seen(body))
                    return self._anthropic(body, turn)
                if ":countTokens" in path:
                    return self._json(200, {"totalTokens": estimate_tokens(body)})
                if ":generateContent" in path or ":streamGenerateContent" in path:
                    turn = model._play(path, body, gemini_seen(body))
                    reply = gemini_reply(body, turn)
                    if ":streamGenerateContent" in path:
                        return self._sse(iter([("", reply)]))
                    return self._json(200, reply)
                if path.endswith("/responses"):
                    turn = model._play(path, body, responses_seen(body))
                    return self._sse(responses_events(body, turn, model.ids, model.model_name))
                self._json(404, {"error": {"type": "not_found_error", "message": f"no route {path}"}})

            def _anthropic(self, body: dict[str, Any], turn: Turn) -> None:
                message = anthropic_message(body, turn, model.ids, model.model_name)
                if body.get("stream"):
                    return self._sse(anthropic_events(message))
                self._json(200, message)

            def _json(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _sse(self, events: Iterator[tuple[str, dict[str, Any]]]) -> None:
                data = b"".join(f"{f'event: {name}' + chr(10) if name else ''}data: {json.dumps(payload)}\n\n".encode()
                                for name, payload in events)
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def estimate_tokens(body: dict[str, Any]) -> int:
    return max(1, len(json.dumps(body.get("messages") or body.get("input") or [])) // ESTIMATED_CHARS_PER_TOKEN)


# Anthropic Messages API ------------------------------------------------------------------------------------

def _block_text(content: Any) -> str:
    """The text of a message or tool_result content: a string, or a list of blocks."""
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content or [] if isinstance(block, dict))


def anthropic_seen(body: dict[str, Any]) -> Seen:
    names: dict[str, str] = {}
    results: list[ToolResult] = []
    model_turns = 0
    user_text = ""
    for message in body.get("messages", []):
        content = message.get("content")
        if message.get("role") == "assistant":
            used = [block for block in content if block.get("type") == "tool_use"] if isinstance(content, list) else []
            names |= {block["id"]: block["name"] for block in used}
            model_turns += not used or any(block["name"] != TOOL_SEARCH for block in used)
            continue
        if isinstance(content, str):
            user_text = content
            continue
        for block in content or []:
            if block.get("type") == "tool_result":
                name = names.get(block.get("tool_use_id", ""), "?")
                results.append(ToolResult(name, _block_text(block.get("content")), bool(block.get("is_error"))))
            elif block.get("type") == "text":
                user_text = block["text"]
    system = body.get("system", "")
    deferred = re.findall(r"^(mcp__\S+)$", json.dumps(body.get("messages", [])).replace("\\n", "\n"), re.MULTILINE)
    tools = [t.get("name", "") for t in body.get("tools", []) if t.get("name") != "DeferredToolPlaceholder"]
    return Seen(model_turns, results, tools, system if isinstance(system, str) else _block_text(system), user_text,
                deferred)


def anthropic_message(body: dict[str, Any], turn: Turn, ids: Iterator[int], model_name: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": turn.text}] if turn.text or not turn.calls else []
    content += [{"type": "tool_use", "id": f"toolu_{next(ids):04d}", "name": call.tool, "input": call.arguments}
                for call in turn.calls]
    output_tokens = max(1, len(json.dumps(content)) // ESTIMATED_CHARS_PER_TOKEN)
    return {"id": f"msg_{next(ids):04d}", "type": "message", "role": "assistant",
            "model": body.get("model", model_name), "content": content,
            "stop_reason": "tool_use" if turn.calls else "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": estimate_tokens(body), "output_tokens": output_tokens,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}


def anthropic_events(message: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    start = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 1}}
    yield "message_start", {"type": "message_start", "message": start}
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            yield "content_block_start", {"type": "content_block_start", "index": index,
                                          "content_block": {"type": "text", "text": ""}}
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            yield "content_block_start", {"type": "content_block_start", "index": index,
                                          "content_block": {**block, "input": {}}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield "message_delta", {"type": "message_delta", "delta": {"stop_reason": message["stop_reason"],
                                                               "stop_sequence": None},
                            "usage": {"output_tokens": message["usage"]["output_tokens"]}}
    yield "message_stop", {"type": "message_stop"}


# OpenAI Responses API (Codex CLI) ---------------------------------------------------------------------------

def responses_seen(body: dict[str, Any]) -> Seen:
    names: dict[str, str] = {}
    results: list[ToolResult] = []
    model_turns = 0
    user_text = ""
    previous = None
    for item in body.get("input", []):
        kind = item.get("type", "message")
        if kind == "function_call":
            names[item["call_id"]] = _qualified(item.get("namespace"), item["name"])
            if previous != "function_call":
                model_turns += 1
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else _block_text(output.get("content") if isinstance(output, dict)
                                                                       else output)
            results.append(ToolResult(names.get(item["call_id"], "?"), text))
        elif kind == "message" and item.get("role") == "assistant":
            model_turns += 1
        elif kind == "message" and item.get("role") == "user":
            content = item.get("content")
            user_text = content if isinstance(content, str) else "".join(
                c.get("text", "") for c in content or [] if isinstance(c, dict))
        previous = kind
    tools = [_qualified(t["name"], inner["name"]) for t in body.get("tools", []) if t.get("type") == "namespace"
             for inner in t.get("tools", [])]
    tools += [t["name"] for t in body.get("tools", []) if t.get("type") == "function"]
    return Seen(model_turns, results, tools, str(body.get("instructions", "")), user_text)


def _qualified(namespace: str | None, name: str) -> str:
    """Codex groups an MCP server's tools in a namespace tool (`mcp__rlm`); the script sees `mcp__rlm__exec_code`."""
    return f"{namespace}__{name}" if namespace else name


def _function_call(tool: str, arguments: dict[str, Any], ids: Iterator[int]) -> dict[str, Any]:
    namespace, _, name = tool.rpartition("__") if tool.startswith("mcp__") else ("", "", tool)
    call = {"type": "function_call", "id": f"fc_{next(ids):04d}", "call_id": f"call_{next(ids):04d}", "name": name,
            "arguments": json.dumps(arguments), "status": "completed"}
    return {**call, "namespace": namespace} if namespace else call


def responses_events(body: dict[str, Any], turn: Turn, ids: Iterator[int],
                     model_name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    response_id = f"resp_{next(ids):04d}"
    items: list[dict[str, Any]] = []
    if turn.text or not turn.calls:
        items.append({"type": "message", "id": f"msg_{next(ids):04d}", "role": "assistant", "status": "completed",
                      "content": [{"type": "output_text", "text": turn.text, "annotations": []}]})
    items += [_function_call(call.tool, call.arguments, ids) for call in turn.calls]
    base = {"id": response_id, "object": "response", "model": body.get("model", model_name), "output": []}
    yield "response.created", {"type": "response.created", "response": {**base, "status": "in_progress"}}
    for index, item in enumerate(items):
        yield "response.output_item.added", {"type": "response.output_item.added", "output_index": index,
                                             "item": item}
        if item["type"] == "message":
            yield "response.output_text.delta", {"type": "response.output_text.delta", "output_index": index,
                                                 "item_id": item["id"], "content_index": 0, "delta": turn.text}
        yield "response.output_item.done", {"type": "response.output_item.done", "output_index": index, "item": item}
    tokens_in = estimate_tokens(body)
    tokens_out = max(1, len(json.dumps(items)) // ESTIMATED_CHARS_PER_TOKEN)
    usage = {"input_tokens": tokens_in, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": tokens_out,
             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": tokens_in + tokens_out}
    yield "response.completed", {"type": "response.completed",
                                 "response": {**base, "status": "completed", "output": items, "usage": usage}}


# Gemini API (Gemini CLI) ------------------------------------------------------------------------------------

def gemini_seen(body: dict[str, Any]) -> Seen:
    results: list[ToolResult] = []
    model_turns = 0
    user_text = ""
    for content in body.get("contents", []):
        parts = content.get("parts", [])
        if content.get("role") == "model":
            model_turns += 1
            continue
        for part in parts:
            if "functionResponse" in part:
                response = part["functionResponse"]
                results.append(ToolResult(response.get("name", "?"), json.dumps(response.get("response"))))
            elif "text" in part:
                user_text = part["text"]
    tools = [d["name"] for tool in body.get("tools", []) for d in tool.get("functionDeclarations", [])]
    system = body.get("systemInstruction") or {}
    return Seen(model_turns, results, tools, _block_text(system.get("parts")) if isinstance(system, dict) else "",
                user_text)


def gemini_reply(body: dict[str, Any], turn: Turn) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"text": turn.text}] if turn.text or not turn.calls else []
    parts += [{"functionCall": {"name": call.tool, "args": call.arguments}} for call in turn.calls]
    tokens_in = estimate_tokens({"messages": body.get("contents")})
    tokens_out = max(1, len(json.dumps(parts)) // ESTIMATED_CHARS_PER_TOKEN)
    return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": tokens_in, "candidatesTokenCount": tokens_out,
                              "totalTokenCount": tokens_in + tokens_out}}


def handle_in(text: str) -> str:
    """The session handle in a load_context result as a host passed it on (JSON or our text)."""
    found = re.search(r'"session":\s*"([^"]+)"|[Ss]ession(?: handle)?:? \'?([A-Za-z0-9_-]{8,})', text)
    if not found:
        raise LookupError(f"no session handle in {text[:300]!r}")
    return found.group(1) or found.group(2)


def main() -> None:
    parser = argparse.ArgumentParser(description="Scripted model endpoint (Anthropic Messages, OpenAI Responses)")
    parser.add_argument("--port", type=int, default=8098)
    arguments = parser.parse_args()
    with ScriptedModel(port=arguments.port) as endpoint:
        print(endpoint.url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
