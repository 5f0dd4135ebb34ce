"""A real HTTP server on 127.0.0.1 (in a thread) that speaks Execlave's REST endpoints, with
scriptable behaviour for contract tests.

Endpoints:
- ``GET /api/v1/policies`` -> ``self.policies`` (list, or whatever document is set), with an ETag
  derived from the content and ``If-None-Match`` -> 304.
- ``GET /api/v1/agents/status`` -> ``{"agents": [{"agentId", "status", "reason"}]}`` from ``self.agents``.
- ``POST /api/v1/policies/enforce`` -> ``self.enforce(body)`` returns ``(status, json)``; default
  allows.
- ``POST /api/v1/agents`` -> 201 with the body echoed plus ``"registered": true``.

Every request needs ``Authorization: Bearer <self.api_key>`` or gets 401. ``self.fault[path]``
overrides an endpoint with one of: an int status (body ``{"error": ...}``), ``"malformed"`` (200
with a broken JSON body), ``"hang"`` (accept and never answer until the server stops),
``("slow", seconds)`` (answer normally after a delay).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ExeclaveAPI", "Recorded"]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(
        self, status: int, payload: Any = None, *, raw: bytes | None = None, etag: str | None = None
    ) -> None:
        data = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if etag:
            self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        api: ExeclaveAPI = self.server.api
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        path = self.path.split("?", 1)[0]
        with api.lock:
            api.requests.append(Recorded(method, path, dict(self.headers.items()), body))
        fault = api.fault.get(path)
        if fault == "hang":
            api.stopping.wait(60)
            return
        if isinstance(fault, tuple) and fault[0] == "slow":
            api.stopping.wait(fault[1])
            fault = None
        if self.headers.get("Authorization") != f"Bearer {api.api_key}":
            self._send(401, {"error": "invalid api key"})
            return
        if isinstance(fault, int):
            self._send(fault, {"error": f"scripted {fault}"})
            return
        if fault == "malformed":
            self._send(200, raw=b'{"policies": [ {"id": ')
            return
        if method == "GET" and path == "/api/v1/policies":
            document = api.policies
            etag = '"' + hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:16] + '"'
            if api.etags and self.headers.get("If-None-Match") == etag:
                self._send(304, etag=etag)
                return
            self._send(200, document, etag=etag if api.etags else None)
        elif method == "GET" and path == "/api/v1/agents/status":
            agents = [{"agentId": a, "status": s, "reason": r} for a, (s, r) in sorted(api.agents.items())]
            self._send(200, {"agents": agents})
        elif method == "POST" and path == "/api/v1/policies/enforce":
            status, payload = api.enforce(body)
            self._send(status, payload)
        elif method == "POST" and path == "/api/v1/agents":
            self._send(201, {**(body or {}), "registered": True})
        else:
            self._send(404, {"error": "not found"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: ExeclaveAPI


def _allow(body: Any) -> tuple[int, Any]:
    return 200, {"allowed": True, "warnings": []}


class ExeclaveAPI:
    """``with ExeclaveAPI(api_key=...) as api: api.base_url``; mutate attributes to script it."""

    def __init__(self, api_key: str, policies: Any = None) -> None:
        self.api_key = api_key
        self.policies: Any = [] if policies is None else policies
        self.agents: dict[str, tuple[str, str | None]] = {}
        self.enforce: Callable[[Any], tuple[int, Any]] = _allow
        self.fault: dict[str, Any] = {}
        self.etags = True
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.api = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def calls(self, path: str, method: str | None = None) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    def __enter__(self) -> ExeclaveAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
