"""A loopback stand-in for the Anthropic Messages API that replays scripted tool calls.

The real harness (Claude Code) is pointed at it with `ANTHROPIC_BASE_URL`; each request that offers
tools gets the next scripted `tool_use` (the step is the number of tool results in the
conversation so far), then a final text. Requests are recorded so that a test can read what the
harness sent back for each call: the tool results, hook denials included. Loopback only.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class StandIn:
    def __init__(self, script: list[tuple[str, dict[str, Any]]]) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> StandIn:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def results(self) -> dict[str, dict[str, Any]]:
        """Each scripted call's tool result as the harness reported it: {tool_use_id: block}."""
        out: dict[str, dict[str, Any]] = {}
        for body in self.requests:
            for message in body.get("messages", []):
                content = message.get("content")
                if message.get("role") == "user" and isinstance(content, list):
                    for block in content:
                        if isinstance(block, dict) and block.get("type") == "tool_result":
                            out[str(block.get("tool_use_id"))] = block
        return out

    def result_text(self, step: int) -> str:
        block = self.results().get(f"toolu_{step}", {})
        content = block.get("content")
        if isinstance(content, list):
            return "\n".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
        return str(content or "")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                body = json.loads(raw or b"{}")
                if not self.path.startswith("/v1/messages") or "count_tokens" in self.path:
                    self._json({"input_tokens": 1})
                    return
                standin.requests.append(body)
                step = sum(
                    1
                    for m in body.get("messages", [])
                    if m.get("role") == "user" and isinstance(m.get("content"), list)
                    for b in m["content"]
                    if isinstance(b, dict) and b.get("type") == "tool_result"
                )
                if body.get("tools") and step < len(standin.script):
                    name, tool_input = standin.script[step]
                    self._stream(step, {"type": "tool_use", "id": f"toolu_{step}", "name": name, "input": {}},
                                 {"type": "input_json_delta", "partial_json": json.dumps(tool_input)}, "tool_use",
                                 body)  # fmt: skip
                else:
                    self._stream(step, {"type": "text", "text": ""}, {"type": "text_delta", "text": "done"},
                                 "end_turn", body)  # fmt: skip

            def do_GET(self) -> None:
                self._json({})

            def _json(self, doc: dict[str, Any]) -> None:
                data = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(
                self, step: int, block: dict[str, Any], delta: dict[str, Any], stop: str, body: dict[str, Any]
            ) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                usage = {"input_tokens": 1, "output_tokens": 1}
                message = {"id": f"msg_{step}", "type": "message", "role": "assistant", "content": [],
                           "model": body.get("model", "stand-in"), "stop_reason": None, "stop_sequence": None,
                           "usage": usage}  # fmt: skip
                events = [
                    ("message_start", {"type": "message_start", "message": message}),
                    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
                    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
                    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                    (
                        "message_delta",
                        {
                            "type": "message_delta",
                            "delta": {"stop_reason": stop, "stop_sequence": None},
                            "usage": {"output_tokens": 1},
                        },
                    ),
                    ("message_stop", {"type": "message_stop"}),
                ]
                for name, data in events:
                    self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()

        return Handler
