"""A real OpenAI-compatible chat server on 127.0.0.1, answering with any project backend (for tests).

`/v1/chat/completions` turns the body into a `GenerationRequest` (messages, max_tokens, stop,
temperature, top_p, seed), generates with the backend and answers in the chat completions format,
with `logprobs.content` when the body asks for `logprobs`. `fail_first` requests get `fail_status`
first (retry tests). Every body received is kept in `bodies`.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from t2s_bench.backends.base import Backend, GenerationRequest


class ChatServer:
    def __init__(self, backend: Backend, fail_first: int = 0, fail_status: int = 429):
        self.backend = backend
        self.fail_left, self.fail_status = fail_first, fail_status
        self.bodies: list[dict] = []
        self.auth: list[str | None] = []
        self.lock = threading.Lock()  # one generation at a time: backends are not thread-safe
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def calls(self) -> int:
        return len(self.bodies)

    def answer(self, body: dict) -> tuple[int, dict]:
        with self.lock:
            self.bodies.append(body)
            if self.fail_left > 0:
                self.fail_left -= 1
                return self.fail_status, {"error": "try later"}
            request = GenerationRequest(body["messages"], body["max_tokens"], body.get("stop"),
                                        temperature=body.get("temperature", 0.0), top_p=body.get("top_p", 1.0),
                                        seed=body.get("seed"))
            (gen,) = self.backend.generate([request])
        choice: dict = {"index": 0, "message": {"role": "assistant", "content": gen.text},
                        "finish_reason": gen.finish_reason}
        if body.get("logprobs") and gen.token_logprobs is not None:
            choice["logprobs"] = {"content": [{"token": "", "logprob": lp} for lp in gen.token_logprobs]}
        return 200, {"choices": [choice],
                     "usage": {"prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens}}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.auth.append(self.headers.get("Authorization"))
                if self.path != "/v1/chat/completions":
                    status, payload = 404, {"error": "not found"}
                else:
                    status, payload = server.answer(body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
