"""A fake Anthropic Messages API on loopback: enough for the real Claude Code client, offline.

`POST /v1/messages` (any query, e.g. `?beta=true`) answers with the SSE event sequence of a
streamed message (`message_start`, `content_block_start`, `content_block_delta`,
`content_block_stop`, `message_delta`, `message_stop`), or a JSON message when `stream` is false
(research/real-claude-offline.md). Every request is recorded. Replies are scripted: requests that
carry `tools` (the main turns; title generation carries none) take the next scripted `Reply`,
and everything else gets the default text.

    api = FakeMessagesAPI(default_text="done")
    base_url = api.start()                 # http://127.0.0.1:<port>
    api.script(Reply.tool_use("mcp__relay__ack_event", {"event_id": "evt_1"}), Reply.text("ok"))
    ... ANTHROPIC_BASE_URL=base_url ...
    api.requests[-1].body["messages"]; api.stop()
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ids = itertools.count(1)


@dataclass(frozen=True)
class Reply:
    """One assistant message: text, or a tool_use block (stop_reason `tool_use`)."""

    text_value: str = ""
    tool_name: str = ""
    tool_input: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def text(cls, text: str) -> Reply:
        return cls(text_value=text)

    @classmethod
    def tool_use(cls, name: str, tool_input: dict[str, Any] | None = None) -> Reply:
        return cls(tool_name=name, tool_input=dict(tool_input or {}))

    @property
    def stop_reason(self) -> str:
        return "tool_use" if self.tool_name else "end_turn"

    def block(self) -> dict[str, Any]:
        if self.tool_name:
            return {
                "type": "tool_use",
                "id": f"toolu_fake{next(_ids):06d}",
                "name": self.tool_name,
                "input": self.tool_input,
            }
        return {"type": "text", "text": self.text_value}


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def tool_names(self) -> list[str]:
        tools = self.body.get("tools") if isinstance(self.body, dict) else None
        return [t.get("name", "") for t in tools or [] if isinstance(t, dict)]

    def text(self) -> str:
        """The whole request body as text (for "did the model see X" assertions)."""
        return json.dumps(self.body, ensure_ascii=False)


class FakeMessagesAPI:
    """A loopback Messages API in a background thread. Thread-safe recording."""

    def __init__(self, *, default_text: str = "Done.", model: str = "claude-fake") -> None:
        self.default_text = default_text
        self.model = model
        self.requests: list[RecordedRequest] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self.base_url = ""

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next main-turn requests (those that carry `tools`)."""
        with self._lock:
            self._script.extend(replies)

    def start(self) -> str:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                api._handle(self)

            def do_GET(self) -> None:
                api._handle(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        return self.base_url

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeMessagesAPI:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- queries -------------------------------------------------------------------------------

    def messages_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith("/v1/messages")]

    def saw(self, needle: str) -> bool:
        return any(needle in r.text() for r in self.messages_requests())

    # -- serving -------------------------------------------------------------------------------

    def _next_reply(self, body: Any) -> Reply:
        with self._lock:
            if isinstance(body, dict) and body.get("tools") and self._script:
                return self._script.popleft()
        return Reply.text(self.default_text)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("content-length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        path = h.path.split("?", 1)[0]
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    h.command, h.path, {k.lower(): v for k, v in h.headers.items()}, body
                )
            )
        if h.command == "POST" and path == "/v1/messages/count_tokens":
            self._json(h, 200, {"input_tokens": 42})
        elif h.command == "POST" and path == "/v1/messages":
            reply = self._next_reply(body)
            model = body.get("model", self.model) if isinstance(body, dict) else self.model
            if isinstance(body, dict) and body.get("stream"):
                self._stream(h, reply, model)
            else:
                self._json(h, 200, self._message(reply, model, [reply.block()]))
        else:
            self._json(h, 404, {"type": "error", "error": {"type": "not_found_error"}})

    def _message(self, reply: Reply, model: str, content: list[Any]) -> dict[str, Any]:
        return {
            "id": f"msg_fake{next(_ids):06d}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": reply.stop_reason if content else None,
            "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 0 if not content else 8},
        }

    def _json(self, h: BaseHTTPRequestHandler, status: int, doc: Any) -> None:
        data = json.dumps(doc).encode()
        h.send_response(status)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(data)))
        h.send_header("request-id", f"req_fake{next(_ids):06d}")
        h.end_headers()
        h.wfile.write(data)

    def _stream(self, h: BaseHTTPRequestHandler, reply: Reply, model: str) -> None:
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header("cache-control", "no-cache")
        h.send_header("connection", "close")
        h.send_header("request-id", f"req_fake{next(_ids):06d}")
        h.end_headers()
        h.close_connection = True
        block = reply.block()
        start = dict(block, input={}) if reply.tool_name else dict(block, text="")
        if reply.tool_name:
            delta = {"type": "input_json_delta", "partial_json": json.dumps(reply.tool_input)}
        else:
            delta = {"type": "text_delta", "text": reply.text_value}
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"message": self._message(reply, model, [])}),
            ("content_block_start", {"index": 0, "content_block": start}),
            ("content_block_delta", {"index": 0, "delta": delta}),
            ("content_block_stop", {"index": 0}),
            (
                "message_delta",
                {
                    "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": 8},
                },
            ),
            ("message_stop", {}),
        ]
        for name, data in events:
            payload = json.dumps({"type": name, **data})
            h.wfile.write(f"event: {name}\ndata: {payload}\n\n".encode())
            h.wfile.flush()
