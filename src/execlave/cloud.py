"""The connection to Execlave that an :class:`~execlave.Execlave` client owns.

- Policies come from ``GET /api/v1/policies`` (ETag-aware), refreshed in a background thread,
  with a last-known-good copy on disk used at startup when the server is unreachable.
- The per-agent kill switch comes from ``GET /api/v1/agents/status``
  (``{"agents": [{"agentId", "status": "paused"|"active", "reason"}]}``), polled on the same thread.
- Decisions stay in-process; only policies of a type the SDK cannot evaluate locally are decided
  by ``POST /api/v1/policies/enforce``, behind a decision cache and a circuit breaker.
- ``enforcement_on_outage``: ``fail_closed`` raises EnforcementUnavailableError when no policy set
  was ever loaded (or a blocking server-evaluated policy cannot be decided); ``fail_open`` lets the
  check pass and records a *bypass* (counter + ``on_bypass`` callback + one warning log).

No OpenTelemetry here: the client turns bypasses into span events through ``on_bypass``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import httpx

from .errors import AgentPausedError, EnforcementUnavailableError, ExeclaveError, PolicyConfigError
from .policy import CheckRequest, Decision, PolicyEngine
from .policy.remote import (
    ApiKeyRejectedError,
    RemotePolicySet,
    RemotePolicySource,
    RemoteUnavailableError,
    Secret,
    ServerPolicy,
)

__all__ = ["AGENTS_PATH", "ENFORCE_PATH", "STATUS_PATH", "CloudConnector", "OutageMode"]

OutageMode = Literal["fail_closed", "fail_open"]
STATUS_PATH = "/api/v1/agents/status"
ENFORCE_PATH = "/api/v1/policies/enforce"
AGENTS_PATH = "/api/v1/agents"

_log = logging.getLogger("execlave.cloud")


@dataclass(frozen=True)
class _PendingServerDecision:
    """A check that needs the enforce endpoint: what was decided locally and what to send."""

    request: CheckRequest
    applicable: list[ServerPolicy]
    local: Decision
    body: dict[str, Any]
    key: tuple[Any, ...]


def _digest(value: Any) -> str:
    try:
        text = json.dumps(value, sort_keys=True, default=repr, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _violation(raw: Mapping[str, Any], mode: str) -> dict[str, Any]:
    """A server violation with every key the telemetry layer and users expect."""
    out: dict[str, Any] = {
        "policyId": "execlave",
        "policyType": "server",
        "enforcementMode": mode,
        "severity": "high",
        "message": "",
        "target": "input",
        **raw,
    }
    out.setdefault("policyName", out["policyId"])
    return out


class _Breaker:
    """Opens after ``threshold`` consecutive failures; after ``reset`` seconds lets one trial through."""

    def __init__(self, threshold: int, reset: float, clock: Callable[[], float]) -> None:
        self.threshold, self.reset, self._clock = threshold, reset, clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            if self._opened_at is None:
                return True
            if not self._trial and self._clock() - self._opened_at >= self.reset:
                self._trial = True  # half-open: exactly one request tries
                return True
            return False

    def success(self) -> None:
        with self._lock:
            self._failures, self._opened_at, self._trial = 0, None, False

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial or self._failures >= self.threshold:
                self._opened_at, self._trial = self._clock(), False

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None


class _DecisionCache:
    """A bounded LRU with a TTL, keyed on every field of the enforce request."""

    def __init__(self, size: int, ttl: float, clock: Callable[[], float]) -> None:
        self.size, self.ttl, self._clock = size, ttl, clock
        self._data: OrderedDict[tuple[Any, ...], tuple[float, Decision]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> Decision | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is None or self._clock() - hit[0] > self.ttl:
                return None
            self._data.move_to_end(key)
            return hit[1]

    def put(self, key: tuple[Any, ...], decision: Decision) -> None:
        if self.size <= 0 or self.ttl <= 0:
            return
        with self._lock:
            self._data[key] = (self._clock(), decision)
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class _ServerDecisionError(Exception):
    """The enforce endpoint could not give a decision (reason is safe to show: no key)."""


class CloudConnector:
    """Keeps a :class:`PolicyEngine` in sync with Execlave and answers checks.

    Args:
        engine: the engine to reload and pause/resume.
        api_key: Execlave API key (only ever sent as a Bearer header).
        base_url: Execlave API base URL.
        environment: default environment for enforce requests.
        manage_policies: fetch policies and agent status from the server (remote mode). When
            False the connector only serves :meth:`register_agent`.
        enforcement_on_outage: ``"fail_closed"`` (default) or ``"fail_open"``.
        policy_refresh_interval: seconds between background refreshes (policies and agent status).
        cache_dir: last-known-good directory; None = ``$XDG_CACHE_HOME/execlave``; False = no disk cache.
        request_timeout: bound on every HTTP request (connect, read, write, pool), seconds.
        decision_cache_ttl / decision_cache_size: server-decision cache (0 disables).
        breaker_threshold / breaker_reset: consecutive enforce failures that open the circuit,
            and seconds before one trial request is let through.
        on_bypass: called with ``(request, reason)`` for every fail-open pass.
        transport / async_transport: httpx transports (tests).
    """

    def __init__(
        self,
        engine: PolicyEngine,
        *,
        api_key: str,
        base_url: str,
        environment: str = "production",
        manage_policies: bool = True,
        enforcement_on_outage: OutageMode = "fail_closed",
        policy_refresh_interval: float = 30.0,
        cache_dir: Any = None,
        request_timeout: float = 5.0,
        decision_cache_ttl: float = 30.0,
        decision_cache_size: int = 1024,
        breaker_threshold: int = 5,
        breaker_reset: float = 30.0,
        on_bypass: Callable[[CheckRequest, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if enforcement_on_outage not in ("fail_closed", "fail_open"):
            raise ValueError(
                f"enforcement_on_outage must be 'fail_closed' or 'fail_open'; got {enforcement_on_outage!r}"
            )
        if not policy_refresh_interval > 0:
            raise ValueError(f"policy_refresh_interval must be > 0 seconds; got {policy_refresh_interval!r}")
        if not api_key:
            raise ValueError("an Execlave API key is needed to connect to Execlave")
        self._engine = engine
        self._key = Secret(api_key)
        self.base_url = base_url.rstrip("/")
        self.environment = environment
        self.manages_policies = manage_policies
        self.enforcement_on_outage: OutageMode = enforcement_on_outage
        self.refresh_interval = float(policy_refresh_interval)
        self._timeout = httpx.Timeout(request_timeout)
        self._http = httpx.Client(timeout=self._timeout, transport=transport)
        self._async_transport = async_transport
        self._async_clients: dict[int, tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]] = {}
        self._source = RemotePolicySource(self.base_url, api_key, http=self._http, cache_dir=cache_dir)
        self._server_policies: tuple[ServerPolicy, ...] = ()
        self._loaded = False
        self._origin: str | None = None
        self._server_paused: set[str] = set()
        self._cache = _DecisionCache(decision_cache_size, decision_cache_ttl, clock)
        self._breaker = _Breaker(breaker_threshold, breaker_reset, clock)
        self._on_bypass = on_bypass
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stats_lock = threading.Lock()
        self._stats = {
            "bypasses": 0,
            "policy_refreshes": 0,
            "policy_refresh_errors": 0,
            "server_decisions": 0,
            "server_decision_cache_hits": 0,
            "server_decision_errors": 0,
        }
        self._bypass_logged = False
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return (
            f"CloudConnector(base_url={self.base_url!r}, api_key=<redacted>, loaded={self._loaded}, "
            f"origin={self._origin!r}, enforcement_on_outage={self.enforcement_on_outage!r})"
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Load the policy set (server, else disk cache) and agent status, then refresh in the
        background. Raises :class:`ApiKeyRejectedError` if the server rejects the key."""
        if not self.manages_policies or self._thread is not None:
            return
        try:
            self._refresh_policies(initial=True)
        except ApiKeyRejectedError:
            self.close()
            raise
        if not self._loaded:
            cached = self._source.load_cache()
            if cached is not None:
                self._install(cached)
                _log.warning(
                    "Execlave unreachable at startup (%s); enforcing the last-known-good policy set "
                    "from the disk cache",
                    self.last_error,
                )
            else:
                _log.error(
                    "Execlave unreachable at startup (%s) and no cached policy set: %s",
                    self.last_error,
                    "checks raise EnforcementUnavailableError until a set loads"
                    if self.enforcement_on_outage == "fail_closed"
                    else "checks pass (fail_open) and are counted as bypasses until a set loads",
                )
        self._poll_status()
        self._thread = threading.Thread(target=self._run, name="execlave-cloud-refresh", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 2.0) -> None:
        """Stop the background refresh. The HTTP clients stay usable: enforcement (including
        server-evaluated policies) keeps working after the client's ``shutdown()``."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_interval):
            try:
                self.refresh()
            except Exception:  # never let the thread die: the next round tries again
                if self._stop.is_set():
                    return  # shutting down: the HTTP client may already be closed
                _log.exception("execlave background refresh failed")

    def refresh(self) -> None:
        """One refresh round (policies, then agent status). Called by the background thread."""
        # A rejected key is already logged and recorded; the last good set stays in force.
        with contextlib.suppress(ApiKeyRejectedError):
            self._refresh_policies(initial=False)
        self._poll_status()

    # -- policies -----------------------------------------------------------------------------

    def _install(self, result: RemotePolicySet) -> None:
        self._engine.reload(result.policies)
        self._server_policies = result.server_policies
        self._cache.clear()
        self._loaded = True
        self._origin = result.origin

    def _record_error(self, message: str, level: int) -> None:
        with self._stats_lock:
            self._stats["policy_refresh_errors"] += 1
        if message != self.last_error:
            _log.log(level, "policy refresh from Execlave failed: %s", message)
        self.last_error = message

    def _refresh_policies(self, *, initial: bool) -> None:
        try:
            result = self._source.fetch()
        except ApiKeyRejectedError as exc:
            self._record_error(str(exc), logging.ERROR)
            raise
        except RemoteUnavailableError as exc:
            self._record_error(str(exc), logging.WARNING)
            return
        except PolicyConfigError as exc:
            self._record_error(
                f"the server's policy set is invalid; keeping the last good set: {exc}", logging.ERROR
            )
            return
        with self._stats_lock:
            self._stats["policy_refreshes"] += 1
        if result is None:  # 304: still current
            self.last_error = None
            return
        self._install(result)
        self.last_error = None

    @property
    def loaded(self) -> bool:
        return self._loaded

    @property
    def server_policies(self) -> tuple[ServerPolicy, ...]:
        return self._server_policies

    # -- agent status (kill switch) -----------------------------------------------------------

    def _poll_status(self) -> None:
        try:
            response = self._http.get(self.base_url + STATUS_PATH, headers=self._headers())
        except httpx.HTTPError as exc:
            _log.debug("agent status poll failed: %s", type(exc).__name__)
            return
        if response.status_code != 200:
            _log.debug("agent status poll answered HTTP %s", response.status_code)
            return
        try:
            body = response.json()
            agents = body["agents"] if isinstance(body, Mapping) else body
            entries = [a for a in agents if isinstance(a, Mapping) and isinstance(a.get("agentId"), str)]
        except (ValueError, KeyError, TypeError):
            _log.warning("agent status poll answered an unusable body; keeping the current state")
            return
        paused_now: dict[str, str | None] = {}
        for entry in entries:
            if entry.get("status") == "paused":
                reason = entry.get("reason")
                paused_now[entry["agentId"]] = reason if isinstance(reason, str) else None
        for agent_id, reason in paused_now.items():
            self._engine.pause(agent_id, reason)
        # Resume only what the server paused: a local pause_agent() stays until resume_agent().
        for agent_id in self._server_paused - paused_now.keys():
            self._engine.resume(agent_id)
        self._server_paused = set(paused_now)

    # -- checks -------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key.reveal()}", "Accept": "application/json"}

    def _bypass(self, request: CheckRequest, decision: Decision, reason: str) -> Decision:
        """Count and report a fail-open pass; the returned decision carries the reason to the span."""
        with self._stats_lock:
            self._stats["bypasses"] += 1
        if not self._bypass_logged:
            self._bypass_logged = True
            _log.warning("enforcement bypassed (fail_open): %s; every bypass is counted in stats()", reason)
        if self._on_bypass is not None:
            try:
                self._on_bypass(request, reason)
            except Exception:
                _log.exception("on_bypass callback failed")
        return replace(decision, bypasses=(*decision.bypasses, reason))

    def _local(self, request: CheckRequest) -> Decision:
        """The in-process decision; with no policy set loaded, a fail_open bypass (or a raise)."""
        if not self._loaded:
            if self._engine.is_paused(request.agent_id):
                raise AgentPausedError(request.agent_id, self._engine.paused_agents().get(request.agent_id))
            reason = "no policy set loaded from Execlave or the disk cache"
            if self.enforcement_on_outage == "fail_closed":
                detail = f" ({self.last_error})" if self.last_error else ""
                raise EnforcementUnavailableError(f"{reason}{detail}; enforcement_on_outage='fail_closed'")
            return self._bypass(request, Decision("allow", (), self._engine.version), reason)
        return self._engine.evaluate(request)

    def _server_applicable(self, request: CheckRequest) -> list[ServerPolicy]:
        if not (request.input or request.tool_calls):
            return []
        return [p for p in self._server_policies if p.applies_to(request.agent_id)]

    def _body(self, request: CheckRequest) -> dict[str, Any]:
        return {
            "agentId": request.agent_id,
            "input": request.input,
            "environment": request.environment or self.environment,
            "metadata": dict(request.metadata) if request.metadata else {},
            "tools": [
                {"name": c.name, "arguments": c.arguments, **({"id": c.call_id} if c.call_id else {})}
                for c in request.tool_calls
            ],
        }

    def _cache_key(self, body: Mapping[str, Any]) -> tuple[Any, ...]:
        tools = tuple((t["name"], _digest(t.get("arguments"))) for t in body["tools"])
        return (
            self._engine.version,
            body["agentId"],
            body["environment"],
            tools,
            _digest(body["input"]),
            _digest(body["metadata"]),
        )

    def _parse(self, response: httpx.Response) -> Decision:
        status = response.status_code
        if status not in (200, 403):
            reason = "API key rejected (HTTP 401)" if status == 401 else f"HTTP {status}"
            raise _ServerDecisionError(reason)
        try:
            body = response.json()
        except ValueError:
            raise _ServerDecisionError("malformed JSON") from None
        if not isinstance(body, Mapping) or not isinstance(body.get("allowed"), bool):
            raise _ServerDecisionError("answer without a boolean 'allowed'")
        if status == 403 or not body["allowed"]:
            violations = body.get("violations") or []
            if not isinstance(violations, list):
                raise _ServerDecisionError("'violations' is not a list")
            out = [_violation(v, "block") for v in violations if isinstance(v, Mapping)]
            if not any(v.get("enforcementMode") == "block" for v in out):
                out.append(_violation({"message": "blocked by Execlave"}, "block"))
            return Decision("block", tuple(out), self._engine.version)
        warnings = body.get("warnings") or []
        out = (
            [_violation(w, "warn") for w in warnings if isinstance(w, Mapping)]
            if isinstance(warnings, list)
            else []
        )
        return Decision("warn" if out else "allow", tuple(out), self._engine.version)

    def _on_server_failure(
        self, request: CheckRequest, applicable: Sequence[ServerPolicy], local: Decision, reason: str
    ) -> Decision:
        with self._stats_lock:
            self._stats["server_decision_errors"] += 1
        ids = ", ".join(p.id for p in applicable)
        message = f"Execlave could not decide server-evaluated policies ({ids}): {reason}"
        blocking = any(p.enforcement_mode == "block" for p in applicable)
        if blocking and self.enforcement_on_outage == "fail_closed":
            raise EnforcementUnavailableError(f"{message}; enforcement_on_outage='fail_closed'")
        return self._bypass(request, local, message)

    def _combine(self, local: Decision, server: Decision) -> Decision:
        return Decision.merge([local, server])

    def _begin(self, request: CheckRequest) -> Decision | _PendingServerDecision:
        """The in-process part of a check: a final Decision, or what to ask the enforce endpoint."""
        local = self._local(request)
        applicable = self._server_applicable(request) if self._loaded else []
        if not applicable:
            return local
        body = self._body(request)
        pending = _PendingServerDecision(request, applicable, local, body, self._cache_key(body))
        cached = self._cache.get(pending.key)
        if cached is not None:
            with self._stats_lock:
                self._stats["server_decision_cache_hits"] += 1
            return self._combine(local, cached)
        if not self._breaker.allow():
            return self._on_server_failure(request, applicable, local, "circuit breaker open")
        return pending

    def _finish(self, pending: _PendingServerDecision, response: httpx.Response | Exception) -> Decision:
        """Turn the enforce endpoint's answer (or the transport error) into the combined decision."""
        try:
            if isinstance(response, Exception):
                raise response
            decision = self._parse(response)
        except (httpx.HTTPError, _ServerDecisionError) as exc:
            self._breaker.failure()
            reason = str(exc) if isinstance(exc, _ServerDecisionError) else type(exc).__name__
            return self._on_server_failure(pending.request, pending.applicable, pending.local, reason)
        self._breaker.success()
        with self._stats_lock:
            self._stats["server_decisions"] += 1
        self._cache.put(pending.key, decision)
        return self._combine(pending.local, decision)

    def check(self, request: CheckRequest) -> Decision:
        """Decide ``request``: in-process, plus the enforce endpoint when a server-evaluated
        policy applies. Raises AgentPausedError / EnforcementUnavailableError only."""
        step = self._begin(request)
        if isinstance(step, Decision):
            return step
        try:
            response: httpx.Response | Exception = self._http.post(
                self.base_url + ENFORCE_PATH, json=step.body, headers=self._headers()
            )
        except httpx.HTTPError as exc:
            response = exc
        return self._finish(step, response)

    async def acheck(self, request: CheckRequest) -> Decision:
        """:meth:`check` for async code: the enforce call uses httpx.AsyncClient (the local part
        is CPU-only and never waits on the network)."""
        step = self._begin(request)
        if isinstance(step, Decision):
            return step
        try:
            response: httpx.Response | Exception = await self._async_client().post(
                self.base_url + ENFORCE_PATH, json=step.body, headers=self._headers()
            )
        except httpx.HTTPError as exc:
            response = exc
        return self._finish(step, response)

    def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        entry = self._async_clients.get(id(loop))
        if entry is None or entry[0] is not loop:
            client = httpx.AsyncClient(timeout=self._timeout, transport=self._async_transport)
            entry = (loop, client)
            self._async_clients = {k: v for k, v in self._async_clients.items() if not v[0].is_closed()} | {
                id(loop): entry
            }
        return entry[1]

    # -- agents -------------------------------------------------------------------------------

    @staticmethod
    def _agent_body(
        agent_id: str, name: str | None, description: str | None, extra: Mapping[str, Any]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"agentId": agent_id, "name": name or agent_id}
        if description is not None:
            body["description"] = description
        body.update(extra)
        return body

    @staticmethod
    def _agent_result(response: httpx.Response) -> dict[str, Any]:
        if response.status_code in (401, 403):
            raise ExeclaveError(
                f"Execlave rejected the API key when registering an agent (HTTP {response.status_code}); "
                "check EXECLAVE_API_KEY / api_key"
            )
        if response.status_code not in (200, 201, 409):
            raise ExeclaveError(f"registering the agent failed: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = {}
        return dict(body) if isinstance(body, Mapping) else {}

    def register_agent(
        self, agent_id: str, name: str | None = None, description: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """``POST /api/v1/agents``; returns the server's JSON (409 "already registered" is success).
        Raises :class:`~execlave.errors.ExeclaveError` on any failure."""
        try:
            response = self._http.post(
                self.base_url + AGENTS_PATH,
                json=self._agent_body(agent_id, name, description, extra),
                headers=self._headers(),
            )
        except httpx.HTTPError as exc:
            raise ExeclaveError(f"registering the agent failed: {type(exc).__name__}") from None
        return self._agent_result(response)

    async def aregister_agent(
        self, agent_id: str, name: str | None = None, description: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        try:
            response = await self._async_client().post(
                self.base_url + AGENTS_PATH,
                json=self._agent_body(agent_id, name, description, extra),
                headers=self._headers(),
            )
        except httpx.HTTPError as exc:
            raise ExeclaveError(f"registering the agent failed: {type(exc).__name__}") from None
        return self._agent_result(response)

    # -- reporting ----------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        with self._stats_lock:
            out = dict(self._stats)
        out["policies_loaded"] = int(self._loaded)
        out["server_evaluated_policies"] = len(self._server_policies)
        out["circuit_open"] = int(self._breaker.is_open)
        return out
