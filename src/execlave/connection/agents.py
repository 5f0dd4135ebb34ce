"""Agents in Execlave: registration (``POST /api/v1/agents``, 409 -> ``GET /api/v1/agents?search=``),
the kill-switch status poll (``GET /api/v1/agents/{uuid}/status-poll``) and the heartbeat
(``POST /api/v1/agents/{uuid}/heartbeat``), both on one background thread.

The server's pause is its own switch: it never touches a local ``pause_agent()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import httpx

from ..errors import ExeclaveAuthError, ExeclaveError
from ._http import Api, unwrap

AGENTS_PATH = "/api/v1/agents"
MAX_TRACKED = 1024  # agent ids remembered for UUID lookup and heartbeats (bounded against id floods)
LOOKUPS_PER_ROUND = 8
_log = logging.getLogger("execlave.connection")
_AUTH_HINT = (
    "check EXECLAVE_API_KEY / api_key (create or rotate keys in the Execlave dashboard) and that "
    "base_url points at your Execlave deployment"
)


def _segment(value: str) -> str:
    """A server-given id as exactly one path segment (``../``, ``?`` or ``/`` cannot move the request)."""
    return quote(value, safe="")


def _match(
    payload: Any, agent_id: str, environment: str | None, *, exact: bool = False
) -> dict[str, Any] | None:
    """The agent record for ``agent_id`` in a create or search answer. ``exact``: only a record of
    ``environment`` (a record that names another environment is another deployment's agent)."""
    payload = unwrap(payload)
    if isinstance(payload, Mapping) and isinstance(payload.get("agents"), list):
        payload = payload["agents"]
    if isinstance(payload, Mapping):
        payload = [payload] if payload.get("agentId") in (None, agent_id) else []
    if not isinstance(payload, list):
        return None
    matches = [dict(a) for a in payload if isinstance(a, Mapping) and a.get("agentId") in (None, agent_id)]
    if exact:
        matches = [a for a in matches if a.get("environment") in (None, environment)]
    same = [a for a in matches if environment and a.get("environment") == environment]
    if same:
        return same[0]
    return matches[0] if len(matches) == 1 else None


class Agents:
    """Knows which agents have a UUID in Execlave and what the server says about them."""

    def __init__(
        self,
        api: Api,
        *,
        environment: str,
        status_poll_interval: float = 15.0,
        heartbeat_interval: float = 600.0,
        on_pause: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._environment = environment
        self._poll_interval = status_poll_interval
        self._heartbeat_interval = heartbeat_interval
        self._on_pause = on_pause
        self._clock = clock
        self._lock = threading.Lock()
        self._uuids: dict[str, str] = {}
        self._seen: dict[str, float] = {}  # agent id -> when a lookup may next be tried
        self._last_check: dict[str, float] = {}
        self._paused: dict[str, str | None] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.poll_errors = 0

    # -- state the enforcement path reads ---------------------------------------------------

    def uuid(self, agent_id: str) -> str | None:
        return self._uuids.get(agent_id)

    def server_pause(self, agent_id: str) -> tuple[bool, str | None]:
        with self._lock:
            if agent_id in self._paused:
                return True, self._paused[agent_id]
        return False, None

    def seen(self, agent_id: str) -> None:
        """An agent was checked: the poller will resolve its UUID (never on the caller's path)."""
        if agent_id in self._uuids:
            self._last_check[agent_id] = time.time()
        elif agent_id not in self._seen and len(self._seen) < MAX_TRACKED:
            with self._lock:
                self._seen.setdefault(agent_id, 0.0)

    def set_server_status(self, agent_id: str, status: str, reason: str | None = None) -> None:
        with self._lock:
            was = agent_id in self._paused
            if status == "paused":
                self._paused[agent_id] = reason
            else:
                self._paused.pop(agent_id, None)
        if status == "paused" and not was:
            _log.warning("execlave: agent %r paused in Execlave (kill switch)", agent_id)
            if self._on_pause is not None:
                self._on_pause(agent_id)
        elif status != "paused" and was:
            _log.info("execlave: agent %r resumed in Execlave", agent_id)

    # -- registration -------------------------------------------------------------------------

    def _remember(self, agent_id: str, record: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(record)
        if isinstance(out.get("id"), str) and out["id"]:
            with self._lock:
                self._uuids[agent_id] = out["id"]
                self._seen.pop(agent_id, None)
        if out.get("status") in ("paused", "active"):
            self.set_server_status(agent_id, out["status"])
        return out

    @staticmethod
    def _fail(status: int, action: str) -> ExeclaveError:
        if status in (401, 403):
            return ExeclaveAuthError(
                f"Execlave rejected the API key when {action} (HTTP {status}); {_AUTH_HINT}", status
            )
        return ExeclaveError(f"{action} failed: HTTP {status}")

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        agent_id = body["agentId"]
        try:
            response = self._api.request("POST", AGENTS_PATH, json=body)
        except httpx.HTTPError as exc:
            raise ExeclaveError(f"registering agent {agent_id!r} failed: {type(exc).__name__}") from None
        if response.status_code == 409:
            found = self.lookup(agent_id, environment=body.get("environment"))
            if found is None:
                raise ExeclaveError(f"agent {agent_id!r} already exists in Execlave but could not be found")
            return found
        if not 200 <= response.status_code < 300:
            raise self._fail(response.status_code, f"registering agent {agent_id!r}")
        try:
            record = _match(response.json(), agent_id, body.get("environment"))
        except ValueError:
            record = None
        if record is None:
            raise ExeclaveError(f"registering agent {agent_id!r}: Execlave answered an unusable body")
        return self._remember(agent_id, record)

    def lookup(
        self, agent_id: str, *, exact: bool = False, environment: str | None = None
    ) -> dict[str, Any] | None:
        """``GET /api/v1/agents?search=<agent_id>``: the agent's record, or None if not found.
        ``exact``: only this client's environment (the background lookup, which nobody asked for)."""
        try:
            response = self._api.request("GET", AGENTS_PATH, params={"search": agent_id})
        except httpx.HTTPError as exc:
            raise ExeclaveError(f"looking up agent {agent_id!r} failed: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise self._fail(response.status_code, f"looking up agent {agent_id!r}")
        try:
            record = _match(response.json(), agent_id, environment or self._environment, exact=exact)
        except ValueError:
            return None
        return None if record is None else self._remember(agent_id, record)

    # -- background: resolve, poll status, heartbeat ----------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="execlave-agent-status", daemon=True)
            self._thread.start()

    def close(self, timeout: float) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        next_heartbeat = self._clock() + self._heartbeat_interval
        while not self._stop.wait(self._poll_interval):
            try:
                self.poll_once()
                if self._clock() >= next_heartbeat:
                    next_heartbeat = self._clock() + self._heartbeat_interval
                    self.heartbeat_once()
            except Exception:  # the thread never dies; the next round tries again
                if self._stop.is_set():
                    return
                _log.debug("execlave: agent status round failed", exc_info=True)

    def poll_once(self) -> None:
        """Resolve UUIDs of agents seen in checks, then poll every known agent's status."""
        now = self._clock()
        with self._lock:
            due = [a for a, when in self._seen.items() if when <= now][:LOOKUPS_PER_ROUND]
        for agent_id in due:
            try:
                found = self.lookup(agent_id, exact=True)
            except ExeclaveError:
                found = None
                self.poll_errors += 1
            if found is None:
                with self._lock:  # not registered (yet): ask again later, not every round
                    if agent_id in self._seen:
                        self._seen[agent_id] = now + max(10 * self._poll_interval, 60.0)
        for agent_id, agent_uuid in list(self._uuids.items()):
            if self._stop.is_set():
                return
            try:
                response = self._api.request("GET", f"{AGENTS_PATH}/{_segment(agent_uuid)}/status-poll")
                data = unwrap(response.json()) if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError) as exc:
                self.poll_errors += 1
                _log.debug("execlave: status poll for %r failed: %s", agent_id, type(exc).__name__)
                continue
            if not isinstance(data, Mapping) or data.get("status") not in ("paused", "active"):
                self.poll_errors += 1
                _log.debug("execlave: status poll for %r answered HTTP %s", agent_id, response.status_code)
                continue  # keep the current state
            reason = data.get("reason") or data.get("pauseReason")
            self.set_server_status(agent_id, data["status"], reason if isinstance(reason, str) else None)

    def heartbeat_once(self) -> None:
        for agent_id, agent_uuid in list(self._uuids.items()):
            last = self._last_check.get(agent_id)
            when = (
                datetime.fromtimestamp(last, tz=timezone.utc).isoformat().replace("+00:00", "Z")
                if last
                else None
            )
            try:
                self._api.request(
                    "POST",
                    f"{AGENTS_PATH}/{_segment(agent_uuid)}/heartbeat",
                    json={"lastPolicyCheckAt": when},
                )
            except httpx.HTTPError as exc:
                _log.debug("execlave: heartbeat for %r failed: %s", agent_id, type(exc).__name__)
