"""Server-side decisions: ``POST /api/v1/policies/enforce`` with the body the published client
sends, every answer it handles, a decision cache keyed on the whole request, and a circuit breaker.

An outage (network error, timeout, HTTP 429 or 5xx, circuit open) follows
``enforcement_on_outage``: ``fail_open`` lets the check pass, marks the decision as a bypass and
records it for the platform's audit trail; ``fail_closed`` raises EnforcementUnavailableError.

An answer that is not a decision (a redirect, 400, 404, 413, 422, a 200 without a boolean
``allowed``, ...) is never a pass, whatever the outage mode: the server is up and refused this
request or is not Execlave's enforce endpoint (a wrong ``base_url``), and a pass there would let
anyone who can make a request unacceptable (too big, unencodable) skip enforcement. It raises
EnforcementUnavailableError, logged once at WARNING with the fix and counted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from ..errors import (
    AgentPausedError,
    EnforcementUnavailableError,
    ExeclaveAuthError,
    PlanLimitExceededError,
    QuotaExceededError,
)
from ..policy.pii import mask_pii
from ..policy.types import CheckRequest, Decision, Violation
from ._http import Api, redact_url
from .agents import Agents
from .approvals import Approvals
from .bypass import BypassWindows

ENFORCE_PATH = "/api/v1/policies/enforce"
OutageMode = Literal["fail_open", "fail_closed"]
OUTAGE_MODES = ("fail_open", "fail_closed")
_CLASSIFIER_LIMIT = 4000  # what the published integrations put in `input` for tool arguments
_log = logging.getLogger("execlave.connection")
# NUL (a database refuses it: the server would answer 5xx) and lone surrogates (no UTF-8 for them).
_UNSENDABLE = re.compile("[\x00\ud800-\udfff]")


def _text(value: str) -> str:
    return _UNSENDABLE.sub("\ufffd", value)


def _sendable(value: Any) -> Any:
    """``value`` as strict JSON can carry it: NaN and infinities as strings, NUL and lone
    surrogates replaced (a request that cannot be encoded would get no decision at all)."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_sendable(v) for v in value]
    if isinstance(value, dict):
        return {_text(str(k)): _sendable(v) for k, v in value.items()}
    return value


def _json_safe(value: Any) -> Any:
    try:
        return _sendable(json.loads(json.dumps(value, default=str)))
    except (TypeError, ValueError, RecursionError):
        return _text(str(value)[:_CLASSIFIER_LIMIT])


def enforce_body(
    request: CheckRequest,
    *,
    agent_ref: str,
    environment: str,
    conversation_history: Sequence[Mapping[str, Any]] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(body, action_context)`` for one check. ``input`` is never empty: a check of tool calls
    alone sends their arguments (bounded, the full arguments go in ``metadata.toolArguments``),
    a check of tool outputs alone sends ``tool_output:<name>``."""
    metadata: dict[str, Any] | None = dict(request.metadata) if request.metadata else None
    text = _text(request.input) if isinstance(request.input, str) and request.input.strip() else None
    if request.tool_calls:
        arguments = [
            {"name": c.name, "arguments": _json_safe(c.arguments)}
            for c in request.tool_calls
            if c.arguments is not None
        ]
        if arguments:
            metadata = {**(metadata or {}), "toolArguments": arguments}
        if text is None:
            joined = json.dumps(arguments)[:_CLASSIFIER_LIMIT] if arguments else ""
            text = joined or "tool:" + ",".join(c.name for c in request.tool_calls)
    if text is None and request.tool_outputs:
        text = "tool_output:" + ",".join(o.name or "tool" for o in request.tool_outputs)
    text = _text(text) if text is not None else None
    context: dict[str, Any] = {"input": text or "execlave:round", "environment": environment}
    if metadata is not None:
        context["metadata"] = _json_safe(metadata)
    if request.tool_calls:
        # A model-chosen empty name would make the server refuse the whole request (no decision).
        context["tools"] = [_text(c.name) if c.name.strip() else "unnamed_tool" for c in request.tool_calls]
    body: dict[str, Any] = {"agentId": agent_ref, **context}
    if conversation_history:
        body["conversationHistory"] = _json_safe(list(conversation_history))
    if request.tool_outputs:
        body["toolOutputs"] = [
            {"name": _text(o.name or "tool"), "output": _json_safe(o.content)} for o in request.tool_outputs
        ]
    return body, context


def _violation(raw: Mapping[str, Any], mode: str) -> Violation:
    """A server violation with every key the telemetry layer and users expect."""
    out: dict[str, Any] = {
        "policyId": "execlave",
        "policyType": "server",
        "enforcementMode": mode,
        "severity": "high",
        "message": "",
        "target": "input",
        **{k: v for k, v in raw.items() if v is not None},
    }
    out.setdefault("policyName", out["policyId"])
    return out


_MALFORMED = object()  # an answer whose body is not JSON


def _server_message(body: Any) -> str:
    """The error message an answer carries (``{"error": {"message"}}``, ``{"error": "..."}`` or
    ``{"message"}``), printable, bounded and PII-masked (it may echo the request), for the
    exception; empty if none."""
    if not isinstance(body, Mapping):
        return ""
    error = body.get("error")
    said = error.get("message") if isinstance(error, Mapping) else error
    if not isinstance(said, str):
        said = body.get("message")
    if not isinstance(said, str):
        return ""
    return mask_pii("".join(ch if ch.isprintable() else " " for ch in said)[:200])


def _layers(body: Any) -> list[Mapping[str, Any]]:
    """The answer itself and its ``{"data": ...}`` envelope's payload, where either is an object."""
    layers = [body] if isinstance(body, Mapping) else []
    if layers and isinstance(body.get("data"), Mapping):
        layers.append(body["data"])
    return layers


def _verdict(body: Any) -> bool | None:
    """False if any layer refuses; True if a layer allows and none refuses; None when the answer
    is no decision (no boolean ``allowed``, or an ``allowed`` that is not a boolean anywhere)."""
    values = [layer["allowed"] for layer in _layers(body) if "allowed" in layer]
    if any(not isinstance(v, bool) for v in values):
        return None
    if False in values:
        return False
    return True if values else None


def _refusal(body: Any) -> Mapping[str, Any]:
    return next(layer for layer in _layers(body) if layer.get("allowed") is False)


def _approval_layer(body: Any) -> Mapping[str, Any]:
    """The layer that carries the answer's fields (the envelope's payload when there is one)."""
    layers = _layers(body)
    return next(
        (layer for layer in reversed(layers) if "allowed" in layer or "approvalRequestId" in layer),
        layers[-1] if layers else {},
    )


class Breaker:
    """Opens after ``threshold`` consecutive failures; after ``reset`` seconds one trial goes through.

    A trial that never reports back (its task was cancelled, or it raised) is released by
    :meth:`abandon`, and in any case expires after ``reset`` seconds: the breaker never stays open
    for good while Execlave is back."""

    def __init__(
        self, threshold: int = 3, reset: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold, self.reset, self._clock = threshold, reset, clock
        self.failures = 0
        self.last_error: str | None = None
        self._opened_at: float | None = None
        self._trial_at: float | None = None
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            if self._opened_at is None:
                return True
            now = self._clock()
            trial_lost = self._trial_at is not None and now - self._trial_at >= self.reset
            if (self._trial_at is None or trial_lost) and now - self._opened_at >= self.reset:
                self._trial_at = now
                return True
            return False

    def abandon(self) -> None:
        """A request ended without an answer or an error to count (cancelled): free its trial."""
        with self._lock:
            self._trial_at = None

    def success(self) -> None:
        with self._lock:
            self.failures, self._opened_at, self._trial_at, self.last_error = 0, None, None, None

    def failure(self, error: str) -> None:
        with self._lock:
            self.failures += 1
            self.last_error = error
            trial = self._trial_at is not None
            if trial or self.failures >= self.threshold:
                if self._opened_at is None or trial:
                    _log.warning(
                        "execlave: circuit to Execlave open after %d failure(s): %s", self.failures, error
                    )
                self._opened_at, self._trial_at = self._clock(), None

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None


class DecisionCache:
    """Allow/warn answers for ``ttl`` seconds, keyed on a digest of the whole request body."""

    def __init__(
        self, ttl: float = 60.0, size: int = 500, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl, self.size, self._clock = ttl, size, clock
        self._data: OrderedDict[str, tuple[float, Decision]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(body: Mapping[str, Any]) -> str:
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, key: str) -> Decision | None:
        if self.ttl <= 0:
            return None
        with self._lock:
            hit = self._data.get(key)
            if hit is None:
                return None
            if self._clock() >= hit[0]:
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return hit[1]

    def put(self, key: str, decision: Decision) -> None:
        if self.ttl <= 0 or self.size <= 0:
            return
        with self._lock:
            self._data[key] = (self._clock() + self.ttl, decision)
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


@dataclass(frozen=True)
class _Pending:
    request: CheckRequest
    body: dict[str, Any]
    context: dict[str, Any]
    key: str


@dataclass(frozen=True)
class _Approval:
    approval_id: str
    context: dict[str, Any]


class Decider:
    """Asks Execlave to decide one :class:`CheckRequest`; returns a :class:`Decision` or raises
    (AgentPausedError, ExeclaveAuthError, approval errors, EnforcementUnavailableError,
    PlanLimitExceededError)."""

    def __init__(
        self,
        api: Api,
        *,
        agents: Agents,
        approvals: Approvals,
        bypass: BypassWindows,
        environment: str,
        enforcement_on_outage: OutageMode = "fail_open",
        plan_limit_behavior: OutageMode = "fail_open",
        cache_ttl: float = 60.0,
        breaker: Breaker | None = None,
    ) -> None:
        self._api = api
        self._agents = agents
        self._approvals = approvals
        self._bypass = bypass
        self.environment = environment
        self.enforcement_on_outage = enforcement_on_outage
        self.plan_limit_behavior = plan_limit_behavior
        self.cache = DecisionCache(cache_ttl)
        self.breaker = breaker or Breaker()
        self._stats_lock = threading.Lock()
        self._outage_logged = False
        self._no_decision_logged: set[int] = set()
        self.counters = {
            "server_decisions": 0,
            "server_decision_cache_hits": 0,
            "server_decision_errors": 0,
            "server_no_decision": 0,
            "bypasses": 0,
            "approvals": 0,
        }

    def _count(self, name: str) -> None:
        with self._stats_lock:
            self.counters[name] += 1

    # -- the two halves of a check ----------------------------------------------------------

    def _begin(
        self, request: CheckRequest, history: Sequence[Mapping[str, Any]] | None
    ) -> Decision | _Pending:
        agent_id = request.agent_id
        self._agents.seen(agent_id)
        paused, reason = self._agents.server_pause(agent_id)
        if paused:
            raise AgentPausedError(agent_id, reason or "paused in Execlave")
        body, context = enforce_body(
            request,
            agent_ref=self._agents.uuid(agent_id) or agent_id,
            environment=request.environment or self.environment,
            conversation_history=history,
        )
        key = DecisionCache.key(body)
        cached = self.cache.get(key)
        if cached is not None:
            self._count("server_decision_cache_hits")
            return cached
        if not self.breaker.allow():
            return self._outage(request, "circuit_breaker_open", self.breaker.last_error or "circuit open")
        return _Pending(request, body, context, key)

    def _outage(self, request: CheckRequest, reason: str, detail: str, status: int | None = None) -> Decision:
        self._count("server_decision_errors")
        failures = self.breaker.failures
        if self.enforcement_on_outage == "fail_closed":
            raise EnforcementUnavailableError(
                f"Execlave could not decide ({reason}); enforcement_on_outage='fail_closed'", detail
            )
        self._count("bypasses")
        self._bypass.record(
            request.agent_id,
            reason,
            f"fail_open_{reason}"[:64],
            message=detail,
            status=status,
            consecutive_failures=failures,
        )
        # Logged once per outage (every pass is counted, on its span, and reported to Execlave).
        level = logging.DEBUG if self._outage_logged else logging.WARNING
        self._outage_logged = True
        _log.log(
            level,
            "execlave: Execlave could not decide (%s: %s); enforcement_on_outage='fail_open' lets checks "
            "pass: each pass is counted in stats(), recorded on its span and reported to Execlave. Check "
            "that %s is reachable from here; enforcement_on_outage='fail_closed' stops rounds instead",
            reason,
            detail,
            redact_url(self._api.base_url),
        )
        return Decision("allow", bypasses=(f"{reason}: {detail}",))

    def _finish(self, pending: _Pending, response: httpx.Response | Exception) -> Decision | _Approval:
        request = pending.request
        if isinstance(response, Exception):
            self.breaker.failure(type(response).__name__)
            return self._outage(request, "network_error", type(response).__name__)
        status = response.status_code
        if status >= 500 or status == 429:
            self.breaker.failure(f"HTTP {status}")
            return self._outage(request, "server_error", f"HTTP {status}", status)
        self.breaker.success()  # the server answered: no outage, whatever the answer
        self._outage_logged = False
        if status != 402:
            self._bypass.recover(request.agent_id)
        try:
            body: Any = response.json() if response.content else None
        except ValueError:
            body = _MALFORMED
        if status in (200, 403):
            verdict = _verdict(body)
            if verdict is False:
                self._count("server_decisions")
                return self._blocked(request, _refusal(body))
            if verdict is True and status == 200:
                self._count("server_decisions")
                decision = self._allowed(_approval_layer(body))
                self.cache.put(pending.key, decision)
                return decision
        if status == 202:
            approval = _approval_layer(body)
            approval_id = approval.get("approvalRequestId")
            if isinstance(approval_id, str) and approval_id:
                self._count("approvals")
                return _Approval(approval_id, pending.context)
        if status in (401, 403):
            raise ExeclaveAuthError(
                f"Execlave rejected the API key (HTTP {status} from POST {ENFORCE_PATH}); check "
                "EXECLAVE_API_KEY / api_key (create or rotate keys in the Execlave dashboard) and that "
                "base_url points at your Execlave deployment",
                status,
            )
        if status == 402:
            return self._plan_limit(request, body)
        return self._no_decision(status, body)

    def _no_decision(self, status: int, body: Any) -> Decision:
        """Execlave is up but this answer decides nothing: never a pass (see the module docs)."""
        self._count("server_no_decision")
        what = f"HTTP {status}" + (" and malformed JSON" if body is _MALFORMED else "")
        if status == 200 and body is not _MALFORMED:
            what += " without a boolean 'allowed'"
        said = _server_message(body)
        if said:
            what += f" ({said!r})"
        fix = (
            f"check that base_url ({redact_url(self._api.base_url)}) is your Execlave deployment's API "
            "(https, no path; a redirect or a 404 for every agent means it is not)"
        )
        if status == 404:
            fix += ", and that Execlave knows this agent (exe.register_agent or the dashboard)"
        if status in (400, 413, 422):
            fix = "Execlave refused this request (its content or size); " + fix
        with self._stats_lock:
            first = status not in self._no_decision_logged
            self._no_decision_logged.add(status)
        if first:
            _log.warning(
                "execlave: POST %s answered %s, which is not a decision: the round stops (this is not an "
                "outage, so enforcement_on_outage does not let it pass); %s",
                ENFORCE_PATH,
                what,
                fix,
            )
        raise EnforcementUnavailableError(
            f"Execlave answered POST {ENFORCE_PATH} with {what}, which is not a decision; the round stops "
            f"in either outage mode: {fix}"
        )

    # -- answers ----------------------------------------------------------------------------

    @staticmethod
    def _allowed(body: Mapping[str, Any]) -> Decision:
        raw = body.get("warnings")
        warnings = (
            tuple(_violation(w, "warn") for w in raw if isinstance(w, Mapping))
            if isinstance(raw, list)
            else ()
        )
        return Decision("warn" if warnings else "allow", warnings)

    def _blocked(self, request: CheckRequest, body: Mapping[str, Any]) -> Decision:
        raw = body.get("violations")
        violations = (
            [_violation(v, "block") for v in raw if isinstance(v, Mapping)] if isinstance(raw, list) else []
        )
        kill = next((v for v in violations if v.get("policyType") == "kill_switch"), None)
        if kill is not None:
            self.cache.clear()  # a paused agent must not run on cached allows (any request of it)
            if self._agents.uuid(request.agent_id):  # the status poll will see it resumed
                self._agents.set_server_status(request.agent_id, "paused", kill.get("message") or None)
            raise AgentPausedError(request.agent_id, str(kill.get("message") or "paused in Execlave"))
        if not any(v.get("enforcementMode") == "block" for v in violations):
            violations.append(_violation({"message": "blocked by Execlave"}, "block"))
        return Decision("block", tuple(violations))

    def _plan_limit(self, request: CheckRequest, body: Any) -> Decision:
        error = body.get("error") if isinstance(body, Mapping) else None
        error = error if isinstance(error, Mapping) else {}

        def number(name: str) -> int:
            try:
                return int(error.get(name, 0))
            except (TypeError, ValueError):
                return 0

        quota = QuotaExceededError(
            str(error.get("resource", "unknown")),
            number("current"),
            number("max"),
            str(error.get("message") or ""),
        )
        if self.plan_limit_behavior == "fail_closed":
            raise PlanLimitExceededError(quota.resource, quota.current, quota.max, str(quota))
        self._count("bypasses")
        self._bypass.record(
            request.agent_id, "plan_limit_exceeded", "fail_open_plan_limit", message=str(quota), status=402
        )
        _log.warning("execlave: plan limit reached (%s); continuing without server enforcement", quota)
        warning = _violation(
            {
                "policyId": "plan_limit",
                "policyName": "Plan Limit",
                "policyType": "plan_limit",
                "message": str(quota),
            },
            "warn",
        )
        return Decision("warn", (warning,), bypasses=(f"plan_limit_exceeded: {quota}",))

    # -- sync and async ---------------------------------------------------------------------

    def decide(self, request: CheckRequest, history: Sequence[Mapping[str, Any]] | None = None) -> Decision:
        step = self._begin(request, history)
        if isinstance(step, Decision):
            return step
        try:
            response: httpx.Response | Exception = self._api.request("POST", ENFORCE_PATH, json=step.body)
        except httpx.HTTPError as exc:
            response = exc
        except BaseException:
            self.breaker.abandon()
            raise
        result = self._finish(step, response)
        if isinstance(result, _Approval):
            self._approvals.wait(result.approval_id, result.context)
            return Decision("allow")
        return result

    async def adecide(
        self, request: CheckRequest, history: Sequence[Mapping[str, Any]] | None = None
    ) -> Decision:
        step = self._begin(request, history)
        if isinstance(step, Decision):
            return step
        try:
            response: httpx.Response | Exception = await self._api.arequest(
                "POST", ENFORCE_PATH, json=step.body
            )
        except httpx.HTTPError as exc:
            response = exc
        except BaseException:  # cancelled (a timeout around the round): no answer to count
            self.breaker.abandon()
            raise
        result = self._finish(step, response)
        if isinstance(result, _Approval):
            await self._approvals.await_(result.approval_id, result.context)
            return Decision("allow")
        return result
