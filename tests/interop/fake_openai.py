"""A fake OpenAI-compatible API on 127.0.0.1, standard library only.

The recording script runs it inside each emitter's throwaway venv (where infermeter is not
installed) and the live test runs it in the test process, so it imports nothing else.

What it answers (fixed numbers, so tests derive the expected tokens and cost by hand):

- ``POST /v1/chat/completions``: usage ``PROMPT_TOKENS`` / ``COMPLETION_TOKENS``; the
  response model is the request model plus ``SNAPSHOT`` (``gpt-4o-mini`` →
  ``gpt-4o-mini-2024-07-18``), as the real API names the snapshot that ran. With
  ``"stream": true`` it sends ``CHUNKS`` content chunks ``CHUNK_DELAY_S`` apart (the first
  after the same delay), then — when ``stream_options.include_usage`` — a final chunk with
  the usage and no choices, then ``data: [DONE]``.
- ``POST /v1/embeddings``: one 8-dimensional vector per input, usage ``EMBEDDING_TOKENS``.
- Any request whose last user message (or input) is ``THROTTLE`` gets ``429`` with
  ``Retry-After: RETRY_AFTER_S`` and an OpenAI error body (``rate_limit_exceeded``).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROMPT_TOKENS = 1000
COMPLETION_TOKENS = 100
EMBEDDING_TOKENS = 50
SNAPSHOT = "-2024-07-18"
CHUNKS = ("Hel", "lo", "!")
CHUNK_DELAY_S = 0.05
THROTTLE = "THROTTLE"
RETRY_AFTER_S = 2


def _last_text(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if isinstance(messages, list) and messages:
        content = messages[-1].get("content")
        return content if isinstance(content, str) else ""
    value = body.get("input")
    if isinstance(value, list) and value:
        value = value[-1]
    return value if isinstance(value, str) else ""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", "req_fake")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if _last_text(body) == THROTTLE:
            self._json(
                429,
                {
                    "error": {
                        "message": "Rate limit reached for requests",
                        "type": "requests",
                        "param": None,
                        "code": "rate_limit_exceeded",
                    }
                },
                {"Retry-After": str(RETRY_AFTER_S)},
            )
            return
        model = str(body.get("model") or "gpt-4o-mini")
        if self.path.endswith("/embeddings"):
            inputs = body.get("input")
            count = len(inputs) if isinstance(inputs, list) else 1
            self._json(
                200,
                {
                    "object": "list",
                    "data": [
                        {"object": "embedding", "index": i, "embedding": [0.125] * 8}
                        for i in range(count)
                    ],
                    "model": model,
                    "usage": {"prompt_tokens": EMBEDDING_TOKENS, "total_tokens": EMBEDDING_TOKENS},
                },
            )
            return
        if not self.path.endswith("/chat/completions"):
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid"}})
            return
        usage = {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        }
        response_model = model + SNAPSHOT
        if body.get("stream"):
            self._stream(
                response_model, usage, bool((body.get("stream_options") or {}).get("include_usage"))
            )
            return
        self._json(
            200,
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 1_764_000_000,
                "model": response_model,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(CHUNKS)},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            },
        )

    def _stream(self, model: str, usage: dict[str, int], include_usage: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def send(payload: Any) -> None:
            data = (
                b"data: "
                + (payload if isinstance(payload, bytes) else json.dumps(payload).encode())
                + b"\n\n"
            )
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        base = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 1_764_000_000,
            "model": model,
        }
        for i, text in enumerate(CHUNKS):
            time.sleep(CHUNK_DELAY_S)
            delta: dict[str, Any] = {"content": text}
            if i == 0:
                delta["role"] = "assistant"
            send({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        send({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if include_usage:
            send({**base, "choices": [], "usage": usage})
        send(b"[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class FakeOpenAI:
    """``with FakeOpenAI() as api: OpenAI(base_url=api.base_url, api_key="x")``."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
