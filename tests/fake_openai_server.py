"""A small fake OpenAI-compatible inference server, for the serving tests (stdlib only).

Run as a script by the tests (directly, or as a :class:`~energycore.workloads.Launcher` command);
it listens on 127.0.0.1 only and is bounded: it exits after ``--max-requests`` requests or
``--max-seconds`` seconds, whichever comes first, so a test that forgets it cannot leak it.

Endpoints: ``GET /health``, ``GET /v1/models``, ``POST /v1/completions`` and
``POST /v1/chat/completions`` (streamed as server-sent events when ``"stream": true``, one
chunk per token, then a usage chunk and ``data: [DONE]``).

Behaviours for the tests: ``--ttft-s`` and ``--itl-s`` (delays), ``--fail-every N`` (every
N-th request answers HTTP 500), ``--slow-every N`` with ``--slow-s`` (every N-th request
sleeps before its first token), ``--die-after N`` (the process exits in the middle of the N-th
request's stream), ``--startup-s`` (seconds before it listens), ``--oom-above B`` with
``--batch b`` (exits at start-up with a CUDA out-of-memory message when b > B),
``--crash-on-start`` (exits at once with code 3).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, default=0, help="0: any free port (printed as PORT n)")
    p.add_argument("--model", default="fake-model")
    p.add_argument("--ttft-s", type=float, default=0.005)
    p.add_argument("--itl-s", type=float, default=0.001)
    p.add_argument("--fail-every", type=int, default=0)
    p.add_argument("--slow-every", type=int, default=0)
    p.add_argument("--slow-s", type=float, default=0.2)
    p.add_argument("--die-after", type=int, default=0)
    p.add_argument("--startup-s", type=float, default=0.0)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--oom-above", type=int, default=0)
    p.add_argument("--crash-on-start", action="store_true")
    p.add_argument("--max-requests", type=int, default=2000)
    p.add_argument("--max-seconds", type=float, default=120.0)
    return p.parse_args(argv)


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0

    def next(self) -> int:
        with self.lock:
            self.count += 1
            return self.count


def main(argv: list[str] | None = None) -> None:
    a = _args(argv)
    if a.crash_on_start:
        print("fatal: simulated crash at start-up", file=sys.stderr, flush=True)
        sys.exit(3)
    if a.oom_above and a.batch > a.oom_above:
        print(
            f"torch.OutOfMemoryError: CUDA out of memory (max batch {a.batch} > {a.oom_above})",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(1)
    time.sleep(a.startup_s)
    state = _State()
    # bounded in time: the whole process ends after --max-seconds
    threading.Timer(a.max_seconds, lambda: os._exit(0)).start()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _json(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._json(200, {"status": "ok"})
            elif self.path == "/v1/models":
                self._json(200, {"object": "list", "data": [{"id": a.model, "object": "model"}]})
            else:
                self._json(404, {"error": f"no route {self.path}"})

        def do_POST(self) -> None:
            n = state.next()
            if n > a.max_requests:
                self._json(503, {"error": "request budget of the fake server spent"})
                threading.Thread(target=self.server.shutdown).start()
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            chat = self.path == "/v1/chat/completions"
            if self.path not in ("/v1/completions", "/v1/chat/completions"):
                self._json(404, {"error": f"no route {self.path}"})
                return
            if body.get("model") != a.model:
                self._json(404, {"error": f"model {body.get('model')!r} is not served"})
                return
            if a.fail_every and n % a.fail_every == 0:
                self._json(500, {"error": "simulated internal error"})
                return
            prompt = (
                " ".join(m["content"] for m in body.get("messages", []))
                if chat
                else body.get("prompt", "")
            )
            max_tokens = int(body.get("max_tokens", 16))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            time.sleep(a.ttft_s + (a.slow_s if a.slow_every and n % a.slow_every == 0 else 0))
            for k in range(max_tokens):
                if a.die_after and n >= a.die_after and k == max_tokens // 2:
                    os._exit(1)  # the server dies in the middle of a stream
                if k:
                    time.sleep(a.itl_s)
                choice = {"index": 0, "finish_reason": None}
                if chat:
                    choice["delta"] = {"content": f" t{k}"}
                else:
                    choice["text"] = f" t{k}"
                self._event({"id": f"r{n}", "choices": [choice]})
            usage = {
                "prompt_tokens": len(prompt.split()),
                "completion_tokens": max_tokens,
                "total_tokens": len(prompt.split()) + max_tokens,
            }
            self._event({"id": f"r{n}", "choices": [], "usage": usage})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

        def _event(self, obj: dict) -> None:
            self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")
            self.wfile.flush()

    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()
    os._exit(0)


if __name__ == "__main__":
    main()
