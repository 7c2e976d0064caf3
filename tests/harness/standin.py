"""Loopback stand-ins for the model APIs the real harnesses call, replaying scripted tool calls.

A harness is pointed at one by its base-URL setting (Claude Code: `ANTHROPIC_BASE_URL`; Codex CLI:
a model provider's `base_url`; Gemini CLI: `GOOGLE_GEMINI_BASE_URL`). Each request that offers
tools gets the next scripted call — the step is the number of tool results in the conversation so
far — then a final text. Requests are recorded so a test can read what the harness sent back for
each call: the tool results, hook denials included. Loopback only.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Script = list[tuple[str, dict[str, Any]]]


class Loopback:
    """The HTTP server and the script; subclasses speak one API (`answer`) and read its results."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Loopback:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path: str, body: dict[str, Any]) -> tuple[str, list[tuple[str, dict[str, Any]]]] | dict[str, Any]:
        """A JSON document, or ("sse", [(event name, data)]) for a stream."""
        raise NotImplementedError

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        loopback = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                body = json.loads(raw or b"{}")
                reply = loopback.answer(self.path, body)
                if isinstance(reply, dict):
                    self._json(reply)
                    return
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                for name, data in reply[1]:
                    self.wfile.write(
                        (f"event: {name}\n" if name else "").encode() + f"data: {json.dumps(data)}\n\n".encode()
                    )
                self.wfile.flush()

            def do_GET(self) -> None:
                self._json({})

            def _json(self, doc: dict[str, Any]) -> None:
                data = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


class StandIn(Loopback):
    """The Anthropic Messages API, for Claude Code (`POST /v1/messages`, streamed)."""

    def answer(self, path: str, body: dict[str, Any]) -> Any:
        if not path.startswith("/v1/messages") or "count_tokens" in path:
            return {"input_tokens": 1}
        self.requests.append(body)
        step = len(self._results(body))
        if body.get("tools") and step < len(self.script):
            name, tool_input = self.script[step]
            block: dict[str, Any] = {"type": "tool_use", "id": f"toolu_{step}", "name": name, "input": {}}
            delta: dict[str, Any] = {"type": "input_json_delta", "partial_json": json.dumps(tool_input)}
            stop = "tool_use"
        else:
            block, delta, stop = {"type": "text", "text": ""}, {"type": "text_delta", "text": "done"}, "end_turn"
        usage = {"input_tokens": 1, "output_tokens": 1}
        message = {"id": f"msg_{step}", "type": "message", "role": "assistant", "content": [],
                   "model": body.get("model", "stand-in"), "stop_reason": None, "stop_sequence": None,
                   "usage": usage}  # fmt: skip
        final = {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": usage}
        return "sse", [
            ("message_start", {"type": "message_start", "message": message}),
            ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", final),
            ("message_stop", {"type": "message_stop"}),
        ]

    @staticmethod
    def _results(body: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            block
            for message in body.get("messages", [])
            if message.get("role") == "user" and isinstance(message.get("content"), list)
            for block in message["content"]
            if isinstance(block, dict) and block.get("type") == "tool_result"
        ]

    def results(self) -> dict[str, dict[str, Any]]:
        """Each scripted call's tool result as the harness reported it: {tool_use_id: block}."""
        return {str(b.get("tool_use_id")): b for body in self.requests for b in self._results(body)}

    def result_text(self, step: int) -> str:
        content = self.results().get(f"toolu_{step}", {}).get("content")
        if isinstance(content, list):
            return "\n".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
        return str(content or "")


class ResponsesStandIn(Loopback):
    """The OpenAI Responses API, for Codex CLI (`POST /v1/responses`, streamed). A scripted name
    `namespace::tool` calls a namespaced tool (Codex lists each MCP server as one namespace)."""

    def answer(self, path: str, body: dict[str, Any]) -> Any:
        self.requests.append(body)
        step = len(self._outputs(body))
        if body.get("tools") and step < len(self.script):
            name, arguments = self.script[step]
            namespace, _, short = name.rpartition("::")
            item: dict[str, Any] = {"type": "function_call", "id": f"fc_{step}", "call_id": f"call_{step}",
                                    "name": short, "arguments": json.dumps(arguments)}  # fmt: skip
            if namespace:
                item["namespace"] = namespace
        else:
            text = {"type": "output_text", "text": "done", "annotations": []}
            item = {"type": "message", "id": f"msg_{step}", "role": "assistant", "status": "completed",
                    "content": [text]}  # fmt: skip
        usage = {"input_tokens": 1, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 1,
                 "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 2}  # fmt: skip
        events = [
            ("response.created", {"response": {"id": f"resp_{step}"}}),
            ("response.output_item.added", {"output_index": 0, "item": item}),
            ("response.output_item.done", {"output_index": 0, "item": item}),
            ("response.completed", {"response": {"id": f"resp_{step}", "usage": usage}}),
        ]
        return "sse", [(name, {"type": name, **data}) for name, data in events]

    @staticmethod
    def _outputs(body: dict[str, Any]) -> list[dict[str, Any]]:
        items = body.get("input", [])
        return [i for i in items if isinstance(i, dict) and i.get("type") == "function_call_output"]

    def result_text(self, step: int) -> str:
        """What the harness sent back as the output of scripted call `step`."""
        for body in self.requests:
            for item in self._outputs(body):
                if item.get("call_id") == f"call_{step}":
                    output = item.get("output")
                    return output if isinstance(output, str) else json.dumps(output)
        return ""


class GeminiStandIn(Loopback):
    """The Gemini API, for Gemini CLI (`POST /v1beta/models/M:streamGenerateContent?alt=sse`)."""

    def answer(self, path: str, body: dict[str, Any]) -> Any:
        if ":countTokens" in path:
            return {"totalTokens": 1}
        self.requests.append(body)
        step = len(self._responses(body))
        if body.get("tools") and step < len(self.script):
            name, args = self.script[step]
            part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
        else:
            part = {"text": "done"}
        usage = {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2}
        candidate = {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}
        doc = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "stand-in"}
        return ("sse", [("", doc)]) if "streamGenerateContent" in path else doc

    @staticmethod
    def _responses(body: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            p["functionResponse"]
            for c in body.get("contents", [])
            for p in c.get("parts", [])
            if "functionResponse" in p
        ]

    def result_text(self, step: int) -> str:
        """What the harness sent back as the response to scripted call `step`."""
        for body in self.requests:
            found = self._responses(body)
            if len(found) > step:
                return json.dumps(found[step].get("response"))
        return ""
