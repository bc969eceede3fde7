"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1 for the LLM tests (bounded: it answers
only what the test asks, and stops with the test)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = tuple[int, Any]  # (status, JSON body)


def chat_answer(content: str, finish_reason: str = "stop") -> dict[str, Any]:
    """A chat-completions answer whose one choice says `content`."""
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": finish_reason}]}


@contextmanager
def llm_server(reply: Callable[[dict[str, Any], int], Reply]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Serve on a free port of 127.0.0.1: each POST's JSON body is recorded and answered by
    `reply(body, n)` (n: requests so far, from 0). Yields the base URL and the recorded bodies."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append(body | {"_path": self.path, "_auth": self.headers.get("Authorization")})
            status, answer = reply(body, len(received) - 1)
            data = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (the timeout test)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", received
    finally:
        server.shutdown()
        server.server_close()
