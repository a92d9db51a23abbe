"""A local OpenAI-compatible chat-completions server for tests and benchmarks.

Real HTTP on 127.0.0.1 (stdlib ThreadingHTTPServer), so litellm and our dispatcher are exercised end to
end. Replies come from a responder (request -> text, or a full message dict with tool_calls); faults
are queued and consumed one per request: 429 with Retry-After, 500, a hang longer than the client's
timeout, a malformed body, a dropped connection. With `context_window_chars`, a request whose messages
are longer gets the 400 `context_length_exceeded` error OpenAI sends. Also runnable as a process for benchmarks:

    python tests/fakes/openai_server.py --port 8099 --latency 1.0
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self

Responder = Callable[[dict[str, Any]], "str | dict[str, Any] | Fault"]
FaultKind = Literal["429", "500", "hang", "malformed", "drop", "context"]


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    seconds: float = 0.0  # for "hang": how long; for "429": the Retry-After value


def echo_responder(request: dict[str, Any]) -> str:
    """Default: answer with the last user message, prefixed, so tests can check routing."""
    last = request["messages"][-1]["content"]
    return f"echo: {last if isinstance(last, str) else json.dumps(last)}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # benchmarks open hundreds of connections at once

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.open_connections: set[socket.socket] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.open_connections.discard(request)
        super().shutdown_request(request)

    def drop_all(self) -> None:
        """Cut keep-alive connections too, so a stopped server is really gone for its clients."""
        for connection in list(self.open_connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class LocalService:
    """An HTTP server on 127.0.0.1 answering from a daemon thread while the `with` block runs."""

    server: _Server
    thread: threading.Thread

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.server.drop_all()


class FakeOpenAI(LocalService):
    """Context manager: `with FakeOpenAI() as fake: fake.api_base` -> http://127.0.0.1:PORT/v1."""

    def __init__(self, responder: Responder = echo_responder, *, latency_s: float = 0.0, port: int = 0,
                 prompt_tokens: int | None = None, completion_tokens: int | None = None,
                 context_window_chars: int | None = None) -> None:
        self.responder = responder
        self.context_window_chars = context_window_chars
        self.latency_s = latency_s
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.faults: collections.deque[Fault] = collections.deque()
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []  # each request's Authorization header, in order
        self.lock = threading.Lock()
        self.active = 0
        self.peak_active = 0
        self.server = _Server(("127.0.0.1", port), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-openai", daemon=True)

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def worker_env(self) -> dict[str, str]:
        """What a server's environment needs for its worker calls to reach this endpoint through litellm."""
        return {"RLM_WORKER_MODEL": "openai/gpt-4o-mini", "RLM_WORKER_API_BASE": self.api_base,
                "OPENAI_API_KEY": "sk-test"}

    def inject(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    def prompts(self) -> list[str]:
        return [r["messages"][-1]["content"] for r in self.requests]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave in separate writes: no 40 ms ACK stalls
            wbufsize = 1 << 16  # ...and in one segment: handle_one_request flushes after each reply

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                with fake.lock:
                    fake.requests.append(body)
                    fake.authorizations.append(self.headers.get("authorization"))
                    fault = fake.faults.popleft() if fake.faults else None
                    fake.active += 1
                    fake.peak_active = max(fake.peak_active, fake.active)
                if fault is None and fake.context_window_chars and _prompt_chars(body) > fake.context_window_chars:
                    fault = Fault("context")
                reply = None if fault else fake.responder(body)
                if isinstance(reply, Fault):
                    fault, reply = reply, None
                try:
                    self._answer(body, fault, reply)
                finally:
                    with fake.lock:
                        fake.active -= 1

            def _answer(self, body: dict[str, Any], fault: Fault | None, reply: str | dict[str, Any] | None) -> None:
                if fake.latency_s:
                    time.sleep(fake.latency_s)
                if fault and fault.kind == "hang":
                    time.sleep(fault.seconds)
                    return
                if fault and fault.kind == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault and fault.kind in ("429", "500"):
                    status = int(fault.kind)
                    error = {"error": {"message": f"injected {status}", "type": "injected", "code": status}}
                    headers = {"retry-after": str(fault.seconds)} if status == 429 else {}
                    return self._send(status, json.dumps(error).encode(), headers)
                if fault and fault.kind == "context":
                    return self._send(400, _context_length_error(fake.context_window_chars or 0, _prompt_chars(body)),
                                      {})
                if fault and fault.kind == "malformed":
                    return self._send(200, b'{"id": "x", "choices": [{"message": ', {})
                message = reply if isinstance(reply, dict) else {"role": "assistant", "content": reply}
                message.setdefault("role", "assistant")
                text = message.get("content") or ""
                prompt_chars = _prompt_chars(body)
                usage = {
                    "prompt_tokens": max(1, prompt_chars // 4) if fake.prompt_tokens is None else fake.prompt_tokens,
                    "completion_tokens": fake.completion_tokens if fake.completion_tokens is not None
                    else max(1, len(text) // 4),
                }
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                finish = "tool_calls" if message.get("tool_calls") else "stop"
                payload = {
                    "id": f"chatcmpl-{len(fake.requests)}", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model", "fake"),
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage,
                }
                self._send(200, json.dumps(payload).encode(), {})

            def _send(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _prompt_chars(body: dict[str, Any]) -> int:
    return sum(len(str(m.get("content") or "")) for m in body.get("messages", []))


def _context_length_error(window_chars: int, prompt_chars: int) -> bytes:
    message = (f"This model's maximum context length is {window_chars // 4} tokens. However, your messages "
               f"resulted in {prompt_chars // 4} tokens. Please reduce the length of the messages.")
    error = {"message": message, "type": "invalid_request_error", "param": "messages",
             "code": "context_length_exceeded"}
    return json.dumps({"error": error}).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description="Local OpenAI-compatible test server")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each reply")
    arguments = parser.parse_args()
    with FakeOpenAI(latency_s=arguments.latency, port=arguments.port) as fake:
        print(fake.api_base, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
