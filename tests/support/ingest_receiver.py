"""A strict trace-ingest receiver on 127.0.0.1 (HTTP or HTTPS) for the exporter tests.

It serves only ``POST /api/v1/traces/ingest`` as Execlave answers the published 1.9.1 client:
``Authorization: Bearer <key>`` or 401; a JSON body ``{"traces": [...]}`` with 1-100 records of
the published record shape (unknown fields, missing required fields, a status outside the
platform's set, an ``error`` record without ``errorType``/``errorMessage`` -> 400 for the whole
batch); 202 ``{"accepted", "failed", "errors": [{"traceId", "code", "error"}]}`` otherwise, with
per-trace refusals chosen by ``reject``. Every other route is 404. Every request is recorded.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["INGEST", "RECORD_FIELDS", "IngestReceiver", "Request", "problems"]

INGEST = "/api/v1/traces/ingest"
RECORD_FIELDS = {
    "traceId": str,
    "agentId": str,
    "sessionId": str,
    "userId": str,
    "timestamp": str,
    "durationMs": int,
    "status": str,
    "input": object,
    "output": object,
    "errorMessage": str,
    "errorType": str,
    "modelName": str,
    "promptTokens": int,
    "completionTokens": int,
    "totalTokens": int,
    "costUsd": (int, float),
    "environment": str,
    "tags": list,
    "metadata": dict,
    "parentTraceId": str,
    "spanType": str,
    "agentCredential": str,
    "effectEvidence": dict,
}
REQUIRED = ("traceId", "timestamp", "durationMs", "status")
STATUSES = {"success", "error", "timeout", "policy_blocked", "limit_exceeded", "flagged_for_review"}
MAX_BATCH = 100


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    raw: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


def problems(body: Any) -> list[str]:
    """Why the vendor's server would refuse this ingest body (empty: it accepts it)."""
    if not isinstance(body, dict) or set(body) != {"traces"}:
        return ["body must be an object with exactly one field, traces"]
    traces = body["traces"]
    if not isinstance(traces, list) or not 1 <= len(traces) <= MAX_BATCH:
        return [f"traces must be a list of 1..{MAX_BATCH} records"]
    out: list[str] = []
    for i, rec in enumerate(traces):
        if not isinstance(rec, dict):
            out.append(f"traces[{i}] is not an object")
            continue
        for name in set(rec) - set(RECORD_FIELDS):
            out.append(f"traces[{i}].{name}: unknown field")
        for name in REQUIRED:
            if name not in rec:
                out.append(f"traces[{i}].{name}: required")
        for name, kind in RECORD_FIELDS.items():
            value = rec.get(name)
            if name in rec and (value is None or not isinstance(value, kind) or isinstance(value, bool)):
                out.append(f"traces[{i}].{name}: wrong type")
        if isinstance(rec.get("traceId"), str) and not 1 <= len(rec["traceId"]) <= 128:
            out.append(f"traces[{i}].traceId: 1..128 characters")
        if isinstance(rec.get("durationMs"), int) and rec["durationMs"] < 0:
            out.append(f"traces[{i}].durationMs: negative")
        if rec.get("status") not in STATUSES:
            out.append(f"traces[{i}].status: not one of {sorted(STATUSES)}")
        if isinstance(rec.get("timestamp"), str):
            try:
                datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00"))
            except ValueError:
                out.append(f"traces[{i}].timestamp: not ISO-8601")
        if rec.get("status") == "error" and not (rec.get("errorType") and rec.get("errorMessage")):
            out.append(f"traces[{i}]: an error trace needs errorType and errorMessage")
    return out


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        rx = self.server.receiver
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?", 1)[0]
        with rx.cond:
            rx.requests.append(Request(method, path, dict(self.headers.items()), raw))
            rx.cond.notify_all()
        if rx.fault == "hang":
            rx.stopping.wait(60)
            return
        if method != "POST" or path != INGEST:
            self._send(404, {"error": {"code": "NOT_FOUND", "message": f"no route {method} {path}"}})
            return
        if self.headers.get("Authorization") != f"Bearer {rx.api_key}":
            self._send(401, {"error": {"code": "UNAUTHORIZED", "message": "invalid API key"}})
            return
        fault = rx.script.pop(0) if rx.script else rx.fault
        if isinstance(fault, tuple):
            status, payload, headers = fault
            self._send(status, payload, headers)
            return
        if self.headers.get("Content-Encoding") or "json" not in (self.headers.get("Content-Type") or ""):
            self._send(415, {"error": {"code": "UNSUPPORTED_MEDIA_TYPE", "message": "JSON only"}})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, {"error": {"code": "INVALID_JSON", "message": "body is not JSON"}})
            return
        found = problems(body)
        if found:
            rx.invalid.append(found)
            self._send(400, {"error": {"code": "VALIDATION_ERROR", "message": "; ".join(found[:5])}})
            return
        errors = []
        with rx.cond:
            for rec in body["traces"]:
                refusal = rx.reject(rec) if rx.reject else None
                if refusal:
                    errors.append({"traceId": rec["traceId"], "code": refusal[0], "error": refusal[1]})
                else:
                    rx.records.append(rec)
            rx.cond.notify_all()
        answer = {"accepted": len(body["traces"]) - len(errors), "failed": len(errors), "errors": errors}
        self._send(202, {"data": answer} if rx.envelope else answer)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: IngestReceiver


class IngestReceiver:
    """``with IngestReceiver("key") as rx:`` -> ``rx.endpoint`` is the base URL to give the client.

    ``rx.records``: accepted records; ``rx.requests``: every request; ``rx.invalid``: why a batch
    was refused. ``reject(record) -> (code, message) | None`` refuses single records (listed in
    ``errors[]``); ``fault``: ``"hang"`` (accept, never answer) or ``(status, json, headers)``
    for every authorised ingest request; ``script``: such answers (or ``None``: answer normally)
    used once each, in order, before ``fault``.
    """

    def __init__(self, api_key: str, *, tls: ssl.SSLContext | None = None, envelope: bool = False) -> None:
        self.api_key = api_key
        self.envelope = envelope
        self.reject: Callable[[dict[str, Any]], tuple[str, str] | None] | None = None
        self.fault: Any = None
        self.script: list[Any] = []
        self.requests: list[Request] = []
        self.records: list[dict[str, Any]] = []
        self.invalid: list[list[str]] = []
        self.cond = threading.Condition()
        self.stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._scheme = "https" if tls is not None else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def endpoint(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self._server.server_address[1]}"

    def wait_for_records(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.records) < n and time.monotonic() < deadline:
                self.cond.wait(max(deadline - time.monotonic(), 0.0))
            return list(self.records)

    def __enter__(self) -> IngestReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
