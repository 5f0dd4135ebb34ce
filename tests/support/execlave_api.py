"""A loopback fake of Execlave's API (a real HTTP server on 127.0.0.1, in a thread), built from
the published ``execlave-sdk`` 1.9.1 client: the routes it calls, the bodies it sends (validated
strictly: an unknown or mistyped field is a 400, as on the platform), and the answers it reads.
The ``vendor`` nox session runs that client against this same fake to prove it faithful.

Routes (``Authorization: Bearer <api_key>`` or 401):

- ``POST /api/v1/policies/enforce``: ``self.enforce(body)`` -> ``(status, json)``; the default
  allows, or answers the kill-switch 403 while the agent is paused.
- ``POST /api/v1/agents`` (201 ``{"data": agent}``, 409 if it exists), ``GET /api/v1/agents?search=``
  (``{"data": [agents]}``), ``GET /api/v1/agents/{uuid}/status-poll`` (``{"data": {"status"}}``),
  ``POST /api/v1/agents/{uuid}/heartbeat``.
- ``GET /api/v1/approvals/{id}`` (``{"data": {"status", "decisionReason"}}``) and
  ``POST /api/v1/approvals/{id}/verify`` (``{"data": {"valid", ...}}``; valid when the action
  context equals the one the approval was created for).
- ``POST /api/v1/traces/ingest`` ``{"traces": [...]}``: stored in ``self.traces``; per-trace refusals
  from ``self.reject_trace(trace)`` come back in ``errors[]``.
- ``POST /api/v1/sdk/bypass-windows``: windows stored in ``self.bypass_windows``.
- ``GET /health``.

Bodies are parsed as the platform's JSON parser would: only with ``Content-Type: application/json``,
and ``NaN`` / ``Infinity`` are not JSON. A body of a stored record (enforce, agents, traces, bypass
windows) holding NUL or a lone surrogate is a 500, as the platform's database write fails; lengths
are counted in UTF-16 code units, as the platform (JavaScript) counts them.

Any other route is a 404 and is listed in ``self.unknown`` (the ``execlave_api`` fixture fails the
test on it); strict-schema and storage refusals are listed in ``self.invalid``.
``self.fault[route]`` overrides
a route (route names: ``enforce``, ``agents.create``, ``agents.search``, ``status-poll``,
``heartbeat``, ``approvals.get``, ``approvals.verify``, ``ingest``, ``bypass``) with an int status,
``"malformed"`` (200 with broken JSON), ``"hang"`` (never answers until the server stops) or
``("slow", seconds)``. ``self.latency`` delays every answer.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["ExeclaveAPI", "Recorded", "block", "kill_switch_violation"]

_STR, _INT, _NUM, _BOOL, _DICT, _LIST = str, int, (int, float), bool, dict, list

ENFORCE_FIELDS: dict[str, Any] = {
    "agentId": _STR,
    "input": _STR,
    "environment": _STR,
    "metadata": _DICT,
    "estimatedCost": _NUM,
    "tools": _LIST,
    "toolDescriptors": _LIST,
    "conversationHistory": _LIST,
    "toolOutputs": _LIST,
}
AGENT_FIELDS: dict[str, Any] = {
    "agentId": _STR,
    "name": _STR,
    "type": _STR,
    "platform": _STR,
    "environment": _STR,
    "description": _STR,
    "ownerEmail": _STR,
    "allowedDataSources": _LIST,
    "allowedActions": _LIST,
    "requiresHumanApprovalFor": _LIST,
    "tags": _LIST,
    "metadata": _DICT,
    "autonomyLevel": _STR,
}
TRACE_FIELDS: dict[str, Any] = {
    "traceId": _STR,
    "agentId": _STR,
    "sessionId": _STR,
    "userId": _STR,
    "timestamp": _STR,
    "durationMs": _INT,
    "status": _STR,
    "input": object,
    "output": object,
    "modelName": _STR,
    "promptTokens": _INT,
    "completionTokens": _INT,
    "totalTokens": _INT,
    "costUsd": _NUM,
    "errorMessage": _STR,
    "errorType": _STR,
    "environment": _STR,
    "tags": _LIST,
    "metadata": _DICT,
    "parentTraceId": _STR,
    "spanType": _STR,
    "effectEvidence": _DICT,
    "agentCredential": _STR,
}
TRACE_STATUSES = {
    "success",
    "error",
    "timeout",
    "policy_blocked",
    "limit_exceeded",
    "flagged_for_review",
    "effect_unconfirmed",
}
WINDOW_FIELDS: dict[str, Any] = {
    "windowId": _STR,
    "agentId": _STR,
    "reason": _STR,
    "source": _STR,
    "firstAt": _STR,
    "lastAt": _STR,
    "count": _INT,
    "message": _STR,
    "status": _INT,
    "consecutiveFailures": _INT,
}
BYPASS_REASONS = {"circuit_breaker_open", "network_error", "server_error", "plan_limit_exceeded"}
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


class Invalid(Exception):
    pass


class Unstorable(Exception):
    """A body the platform's database cannot store (NUL, a lone UTF-16 surrogate): the published
    client's bypass reporter documents that the write fails and the server answers 5xx."""


def _reject_nan(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # JavaScript's JSON.parse refuses NaN / Infinity


def _check_storable(value: Any) -> None:
    if isinstance(value, str):
        if "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            raise Unstorable
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_storable(k)
            _check_storable(v)
    elif isinstance(value, list):
        for v in value:
            _check_storable(v)


def _utf16_len(text: str) -> int:
    """String length as the platform (JavaScript) counts it: UTF-16 code units."""
    return sum(2 if ord(c) > 0xFFFF else 1 for c in text)


def _check(obj: Any, fields: dict[str, Any], required: tuple[str, ...], where: str) -> None:
    if not isinstance(obj, dict):
        raise Invalid(f"{where}: expected an object")
    for key, value in obj.items():
        if key not in fields:
            raise Invalid(f"{where}: unknown field {key!r}")
        expected = fields[key]
        if value is None or (expected is not object and not isinstance(value, expected)):
            raise Invalid(f"{where}.{key}: wrong type {type(value).__name__}")
        if expected is _INT and isinstance(value, bool):
            raise Invalid(f"{where}.{key}: wrong type bool")
    for key in required:
        if key not in obj:
            raise Invalid(f"{where}: missing {key!r}")


def validate_enforce(body: Any) -> None:
    _check(body, ENFORCE_FIELDS, ("agentId", "input"), "body")
    if not body["input"] or not body["agentId"]:
        raise Invalid("body: agentId and input must be non-empty")
    if "tools" in body and not all(isinstance(t, str) and t for t in body["tools"]):
        raise Invalid("body.tools: expected a list of tool names")
    for i, item in enumerate(body.get("toolOutputs", [])):
        _check(item, {"name": _STR, "input": object, "output": object}, ("name",), f"body.toolOutputs[{i}]")
    for i, item in enumerate(body.get("conversationHistory", [])):
        if not isinstance(item, dict):
            raise Invalid(f"body.conversationHistory[{i}]: expected an object")


def validate_bypass(body: Any) -> None:
    _check(
        body,
        {"sdk": _DICT, "sentAt": _STR, "windows": _LIST, "dropped": _DICT},
        ("sdk", "sentAt", "windows"),
        "body",
    )
    _check(
        body["sdk"],
        {"name": _STR, "language": _STR, "version": _STR},
        ("name", "language", "version"),
        "body.sdk",
    )
    if not _ISO.fullmatch(body["sentAt"]) or len(body["windows"]) > 100:
        raise Invalid("body: bad sentAt or too many windows")
    for i, w in enumerate(body["windows"]):
        where = f"body.windows[{i}]"
        _check(
            w, WINDOW_FIELDS, ("windowId", "agentId", "reason", "source", "firstAt", "lastAt", "count"), where
        )
        if w["reason"] not in BYPASS_REASONS or not (w["count"] >= 1) or not w["agentId"] or not w["source"]:
            raise Invalid(f"{where}: bad reason, count, agentId or source")
        if (
            _utf16_len(w["agentId"]) > 256
            or _utf16_len(w["source"]) > 64
            or _utf16_len(w.get("message", "")) > 500
        ):
            raise Invalid(f"{where}: field too long (UTF-16 code units)")
        if w["count"] > 1_000_000_000 or not 0 <= w.get("consecutiveFailures", 0) <= 1_000_000:
            raise Invalid(f"{where}: count or consecutiveFailures out of range")
        if not (_ISO.fullmatch(w["firstAt"]) and _ISO.fullmatch(w["lastAt"])):
            raise Invalid(f"{where}: bad timestamps")
    if "dropped" in body:
        _check(
            body["dropped"],
            {"dropId": _STR, "windows": _INT, "bypasses": _INT, "since": _STR},
            ("dropId", "windows", "bypasses"),
            "body.dropped",
        )


def validate_trace(trace: Any, where: str) -> None:
    _check(trace, TRACE_FIELDS, ("traceId", "timestamp", "status"), where)
    if trace["status"] not in TRACE_STATUSES:
        raise Invalid(f"{where}.status: {trace['status']!r} is not one of the platform's statuses")
    if not _ISO.fullmatch(trace["timestamp"]):
        raise Invalid(f"{where}.timestamp: not ISO-8601")
    if trace["status"] == "error" and not (trace.get("errorType") and trace.get("errorMessage")):
        raise Invalid(f"{where}: an error trace needs errorType and errorMessage")


def kill_switch_violation(reason: str = "Agent paused via kill switch") -> dict[str, Any]:
    return {
        "policyId": "kill-switch",
        "policyName": "Kill Switch",
        "policyType": "kill_switch",
        "enforcementMode": "block",
        "message": reason,
    }


def block(*violations: dict[str, Any]) -> tuple[int, Any]:
    return 403, {"allowed": False, "violations": list(violations)}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    route: str | None = None


@dataclass
class Approval:
    id: str
    agent: str
    context: dict[str, Any]
    status: str = "pending"
    reason: str | None = None
    verify_valid: bool | None = None  # None: compare contexts


_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/api/v1/policies/enforce"), "enforce"),
    ("POST", re.compile(r"/api/v1/agents"), "agents.create"),
    ("GET", re.compile(r"/api/v1/agents"), "agents.search"),
    ("GET", re.compile(r"/api/v1/agents/(?P<id>[^/]+)/status-poll"), "status-poll"),
    ("POST", re.compile(r"/api/v1/agents/(?P<id>[^/]+)/heartbeat"), "heartbeat"),
    ("GET", re.compile(r"/api/v1/approvals/(?P<id>[^/]+)"), "approvals.get"),
    ("POST", re.compile(r"/api/v1/approvals/(?P<id>[^/]+)/verify"), "approvals.verify"),
    ("POST", re.compile(r"/api/v1/traces/ingest"), "ingest"),
    ("POST", re.compile(r"/api/v1/sdk/bypass-windows"), "bypass"),
    ("GET", re.compile(r"/health"), "health"),
]


# Routes whose bodies the platform writes to its database (bypass windows and traces as the
# published client documents; agents; enforce requests, which are audited).
_STORED = frozenset({"enforce", "agents.create", "ingest", "bypass"})


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, payload: Any = None, *, raw: bytes | None = None) -> None:
        data = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        api: ExeclaveAPI = self.server.api
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw, parse_constant=_reject_nan) if raw else None
        except ValueError:
            body = raw
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if raw and content_type != "application/json":
            body = {}  # a JSON body parser reads nothing from another content type
        split = urlsplit(self.path)
        path = split.path
        route, params = None, {}
        for verb, pattern, name in _ROUTES:
            match = pattern.fullmatch(path)
            if match and verb == method:
                route, params = name, match.groupdict()
                break
        record = Recorded(method, path, parse_qs(split.query), dict(self.headers.items()), body, route)
        with api.lock:
            api.requests.append(record)
            if route is None:
                api.unknown.append(f"{method} {path}")
        if api.latency:
            api.stopping.wait(api.latency)
        fault = api.fault.get(route or "")
        if fault == "hang":
            api.stopping.wait(60)
            return
        if isinstance(fault, tuple) and fault[0] == "slow":
            api.stopping.wait(fault[1])
            fault = None
        if route is None:
            self._send(404, {"error": {"code": "NOT_FOUND", "message": f"no route {method} {path}"}})
            return
        if route != "health" and self.headers.get("Authorization") != f"Bearer {api.api_key}":
            self._send(401, {"error": {"code": "UNAUTHORIZED", "message": "Invalid API key"}})
            return
        if isinstance(fault, int):
            self._send(fault, {"error": {"code": "SCRIPTED", "message": f"scripted {fault}"}})
            return
        if fault == "malformed":
            self._send(200, raw=b'{"allowed": tru')
            return
        if route in _STORED:
            try:
                _check_storable(body)
            except Unstorable:
                with api.lock:
                    api.invalid.append(f"{route}: a value the platform cannot store (NUL or lone surrogate)")
                self._send(500, {"error": {"code": "INTERNAL", "message": "Internal server error"}})
                return
        try:
            status, payload = getattr(api, "_" + route.replace(".", "_").replace("-", "_"))(
                body, params, record
            )
        except Invalid as exc:
            with api.lock:
                api.invalid.append(f"{route}: {exc}")
            status, payload = 400, {"error": {"code": "VALIDATION_ERROR", "message": str(exc)}}
        self._send(status, payload)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many concurrent clients (the benchmark opens 100 connections at once)
    api: ExeclaveAPI


class ExeclaveAPI:
    """``with ExeclaveAPI(api_key=...) as api: api.base_url``; mutate attributes to script it."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.enforce: Callable[[dict[str, Any]], tuple[int, Any]] | None = None
        self.reject_trace: Callable[[dict[str, Any]], tuple[str, str] | None] = lambda trace: None
        self.fault: dict[str, Any] = {}
        self.latency = 0.0
        self.agents: dict[str, dict[str, Any]] = {}  # uuid -> record
        self.approvals: dict[str, Approval] = {}
        self.require_approval: Callable[[dict[str, Any]], bool] = lambda body: False
        self.approval_outcome: str = "pending"  # the status a new approval request starts in
        self.traces: list[dict[str, Any]] = []
        self.bypass_windows: list[dict[str, Any]] = []
        self.heartbeats: list[tuple[str, Any]] = []
        self.requests: list[Recorded] = []
        self.unknown: list[str] = []
        self.invalid: list[str] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.api = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- scripting ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add_agent(self, agent_id: str, environment: str = "production", status: str = "active") -> str:
        agent_uuid = str(uuid.uuid4())
        with self.lock:
            self.agents[agent_uuid] = {
                "id": agent_uuid,
                "agentId": agent_id,
                "name": agent_id,
                "environment": environment,
                "status": status,
            }
        return agent_uuid

    def set_status(self, agent_id: str, status: str) -> None:
        """The dashboard's pause / resume of an agent."""
        with self.lock:
            for agent in self.agents.values():
                if agent["agentId"] == agent_id:
                    agent["status"] = status

    def decide_approval(self, approval_id: str, status: str, reason: str | None = None) -> None:
        with self.lock:
            self.approvals[approval_id].status = status
            self.approvals[approval_id].reason = reason

    def calls(self, route: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.route == route]

    def _agent(self, ref: str, environment: str | None = None) -> dict[str, Any] | None:
        """By UUID, or by agentId (agents are one per agentId and environment, as registration
        shows: the same agentId registers again in another environment)."""
        with self.lock:
            if ref in self.agents:
                return self.agents[ref]
            named = [a for a in self.agents.values() if a["agentId"] == ref]
            if environment is not None:
                named = [a for a in named if a["environment"] == environment]
            return named[0] if named else None

    # -- routes ---------------------------------------------------------------------------------

    def _enforce(self, body: Any, params: dict[str, str], record: Recorded) -> tuple[int, Any]:
        validate_enforce(body)
        agent = self._agent(body["agentId"], body.get("environment", "production"))
        if agent is not None and agent["status"] == "paused":
            return block(kill_switch_violation())
        if self.require_approval(body):
            approval_id = str(uuid.uuid4())
            context = {
                k: v
                for k, v in body.items()
                if k in ("input", "environment", "metadata", "estimatedCost", "tools")
            }
            with self.lock:
                self.approvals[approval_id] = Approval(
                    approval_id, body["agentId"], context, status=self.approval_outcome
                )
            return 202, {"allowed": False, "requiresApproval": True, "approvalRequestId": approval_id}
        if self.enforce is not None:
            return self.enforce(body)
        return 200, {"allowed": True, "warnings": []}

    def _agents_create(self, body: Any, params: dict[str, str], record: Recorded) -> tuple[int, Any]:
        _check(body, AGENT_FIELDS, ("agentId", "name"), "body")
        env = body.get("environment", "production")
        existing = self._agent(body["agentId"], env)
        if existing is not None:
            return 409, {"error": {"code": "CONFLICT", "message": "Agent already exists"}}
        agent_uuid = self.add_agent(body["agentId"], env)
        with self.lock:
            self.agents[agent_uuid].update({k: v for k, v in body.items() if k != "agentId"})
            return 201, {"data": dict(self.agents[agent_uuid])}

    def _agents_search(self, body: Any, params: dict[str, str], record: Recorded) -> tuple[int, Any]:
        term = (record.query.get("search") or [""])[0]
        with self.lock:
            found = [dict(a) for a in self.agents.values() if term in a["agentId"] or term in a["name"]]
        return 200, {"data": found}

    def _status_poll(self, body: Any, params: dict[str, str], record: Recorded) -> tuple[int, Any]:
        with self.lock:
            agent = self.agents.get(params["id"])
        if agent is None:
            return 404, {"error": {"code": "NOT_FOUND", "message": "Agent not found"}}
        return 200, {"data": {"status": agent["status"]}}

    def _heartbeat(self, body: Any, params: dict[str, str], record: Recorded) -> tuple[int, Any]:
        if not isinstance(body, dict) or set(body) - {"lastPolicyCheckAt"}:
            raise Invalid("body: only lastPolicyCheckAt (an ISO-8601 string or null) is accepted")
        if body.get("lastPolicyCheckAt") is not None and not _ISO.fullmatch(str(body["lastPolicyCheckAt"])):
            raise Invalid("body.lastPolicyCheckAt: not ISO-8601")
        with self.lock:
            if params["id"] not in self.agents:
                return 404, {"error": {"code": "NOT_FOUND", "message": "Agent not found"}}
            self.heartbeats.append((params["id"], body.get("lastPolicyCheckAt")))
        return 200, {"data": {"ok": True}}

    def _approvals_get(self, body: Any, params: dict[str, str], record: Recorded) -> tuple[int, Any]:
        with self.lock:
            approval = self.approvals.get(params["id"])
        if approval is None:
            return 404, {"error": {"code": "NOT_FOUND", "message": "Approval not found"}}
        return 200, {
            "data": {"id": approval.id, "status": approval.status, "decisionReason": approval.reason}
        }

    def _approvals_verify(self, body: Any, params: dict[str, str], record: Recorded) -> tuple[int, Any]:
        _check(body, {"actionContext": _DICT}, ("actionContext",), "body")
        with self.lock:
            approval = self.approvals.get(params["id"])
        if approval is None:
            return 404, {"error": {"code": "NOT_FOUND", "message": "Approval not found"}}
        valid = approval.verify_valid
        if valid is None:
            valid = approval.status == "approved" and body["actionContext"] == approval.context
        answer: dict[str, Any] = {"valid": valid}
        if valid:
            answer["certificate"] = {"approvalRequestId": approval.id, "issuedAt": time.time()}
        else:
            answer["reason"] = "action_context_mismatch"
        return 200, {"data": answer}

    def _ingest(self, body: Any, params: dict[str, str], record: Recorded) -> tuple[int, Any]:
        _check(body, {"traces": _LIST}, ("traces",), "body")
        if not body["traces"]:
            raise Invalid("body.traces: empty")
        for i, trace in enumerate(body["traces"]):
            validate_trace(trace, f"body.traces[{i}]")
        errors = []
        for trace in body["traces"]:
            refused = self.reject_trace(trace)
            if refused is None:
                with self.lock:
                    self.traces.append(trace)
            else:
                errors.append({"traceId": trace["traceId"], "code": refused[0], "error": refused[1]})
        return 201, {"success": True, "accepted": len(body["traces"]) - len(errors), "errors": errors}

    def _bypass(self, body: Any, params: dict[str, str], record: Recorded) -> tuple[int, Any]:
        validate_bypass(body)
        with self.lock:
            self.bypass_windows.extend(body["windows"])
        return 202, {"data": {"accepted": len(body["windows"])}}

    def _health(self, body: Any, params: dict[str, str], record: Recorded) -> tuple[int, Any]:
        return 200, {"status": "ok"}

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> ExeclaveAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
