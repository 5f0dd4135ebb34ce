"""Fail-open passes reported to Execlave's audit trail (``POST /api/v1/sdk/bypass-windows``).

Each pass is coalesced into a *window* per ``(agent, reason)``; a window closes when the agent
gets a governed decision again, after ``idle`` seconds without a pass, after ``max_duration``, or
at :meth:`BypassWindows.flush`. Closed windows are kept until Execlave acknowledges them (bounded:
the oldest are dropped first and the loss itself is reported). Recording is in memory and never
raises; sending happens on a background thread and in ``flush()``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import httpx

from .._version import __version__
from ._http import Api

BYPASS_PATH = "/api/v1/sdk/bypass-windows"
REASONS = ("circuit_breaker_open", "network_error", "server_error", "plan_limit_exceeded")
_MAX_AGENT_ID, _MAX_SOURCE, _MAX_MESSAGE, _MAX_PER_REQUEST = 256, 64, 500, 100
_MAX_COUNT, _MAX_FAILURES = 1_000_000_000, 1_000_000  # the server's bounds: over them the report is refused
_FATAL = frozenset({400, 413, 422})  # this body will never be accepted: drop it (logged)
_log = logging.getLogger("execlave.connection")


def _iso(epoch: float) -> str:
    dt = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _text(value: object, limit: int) -> str:
    """Storable text (no NUL, no lone surrogate) of at most ``limit`` UTF-16 units."""
    text = "".join("\ufffd" if ch == "\0" or 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in str(value))
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return text[:i]
    return text


class BypassWindows:
    """Records fail-open passes and delivers them as windows."""

    def __init__(
        self,
        api: Api,
        *,
        idle: float = 60.0,
        max_duration: float = 900.0,
        max_buffered: int = 500,
        interval: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api = api
        self._idle, self._max_duration, self._max_buffered = idle, max_duration, max_buffered
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._open: dict[tuple[str, str], dict[str, Any]] = {}
        self._closed: list[dict[str, Any]] = []
        self._dropped = {"windows": 0, "bypasses": 0}  # losses not yet in a loss report
        self._dropped_since: str | None = None
        # The loss report in flight: immutable until acknowledged, so a retry is the same report
        # (same dropId) and losses meanwhile go into the next one.
        self._pending_drop: dict[str, Any] | None = None
        self._in_flight: set[str] = set()  # windowIds in the report being sent
        self._dropped_in_flight: list[dict[str, Any]] = []  # lost from the buffer while being sent
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.reported = 0
        self.report_errors = 0

    # -- recording (enforcement path: cheap, never raises) ------------------------------------

    def record(
        self,
        agent_id: str,
        reason: str,
        source: str,
        *,
        message: str | None = None,
        status: int | None = None,
        consecutive_failures: int | None = None,
    ) -> None:
        try:
            agent = _text(agent_id, _MAX_AGENT_ID) or "unknown"
            now = self._clock()
            with self._lock:
                key = (agent, reason)
                current = self._open.get(key)
                if current and (
                    now - current["last"] >= self._idle or now - current["first"] >= self._max_duration
                ):
                    self._close(key)
                    current = None
                if current is None:
                    wire: dict[str, Any] = {
                        "windowId": str(uuid.uuid4()),
                        "agentId": agent,
                        "reason": reason,
                        "source": _text(source, _MAX_SOURCE) or "unknown",
                        "firstAt": _iso(now),
                        "lastAt": _iso(now),
                        "count": 1,
                    }
                    current = self._open[key] = {"wire": wire, "first": now, "last": now}
                    while len(self._open) > self._max_buffered:  # bounded however many agent ids
                        self._close(next(iter(self._open)))
                else:
                    wire = current["wire"]
                    wire["count"] = min(wire["count"] + 1, _MAX_COUNT)
                    wire["lastAt"] = _iso(now)
                    current["last"] = now
                if message is not None:
                    wire["message"] = _text(message, _MAX_MESSAGE)
                if status is not None:
                    wire["status"] = int(status)
                if consecutive_failures is not None:
                    wire["consecutiveFailures"] = max(0, min(int(consecutive_failures), _MAX_FAILURES))
            self._ensure_thread()
        except Exception:  # reporting never breaks enforcement
            _log.debug("execlave: could not record a bypass", exc_info=True)

    def recover(self, agent_id: str) -> None:
        """The agent got a governed decision: its open windows end."""
        agent = _text(agent_id, _MAX_AGENT_ID) or "unknown"
        with self._lock:
            for key in [k for k in self._open if k[0] == agent]:
                self._close(key)

    def _close(self, key: tuple[str, str]) -> None:
        entry = self._open.pop(key, None)
        if entry is None:
            return
        self._closed.append(entry["wire"])
        while len(self._closed) > self._max_buffered:
            lost = self._closed.pop(0)
            if lost["windowId"] in self._in_flight:  # a loss only if this send fails
                self._dropped_in_flight.append(lost)
            else:
                self._count_lost(lost)

    def _count_lost(self, lost: dict[str, Any]) -> None:
        self._dropped["windows"] += 1
        self._dropped["bypasses"] += lost["count"]
        self._dropped_since = self._dropped_since or lost["firstAt"]

    def _sent(self, delivered: bool) -> None:
        """The send is over: windows dropped from the buffer meanwhile were delivered, or are lost."""
        with self._lock:
            if not delivered:
                for lost in self._dropped_in_flight:
                    self._count_lost(lost)
            self._in_flight, self._dropped_in_flight = set(), []

    def _tick(self, close_all: bool) -> None:
        now = self._clock()
        with self._lock:
            for key, entry in list(self._open.items()):
                if (
                    close_all
                    or now - entry["last"] >= self._idle
                    or now - entry["first"] >= self._max_duration
                ):
                    self._close(key)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._closed) + len(self._open)

    # -- delivery -----------------------------------------------------------------------------

    def flush(self) -> bool:
        """Close every open window and send what is closed (one pass, each request bounded by the
        API timeout). True when nothing is left unacknowledged."""
        self._tick(close_all=True)
        with self._send_lock:
            return self._send_all()

    def _send_all(self) -> bool:
        while True:
            with self._lock:
                if not self._closed and not self._dropped["windows"] and self._pending_drop is None:
                    return True
                windows = [dict(w) for w in self._closed[:_MAX_PER_REQUEST]]
                body: dict[str, Any] = {
                    "sdk": {"name": "execlave-sdk", "language": "python", "version": __version__},
                    "sentAt": _iso(self._clock()),
                    "windows": windows,
                }
                if self._pending_drop is None and self._dropped["windows"]:
                    self._pending_drop = {"dropId": str(uuid.uuid4()), **self._dropped}
                    if self._dropped_since:
                        self._pending_drop["since"] = self._dropped_since
                    self._dropped, self._dropped_since = {"windows": 0, "bypasses": 0}, None
                dropped = self._pending_drop
                if dropped is not None:
                    body["dropped"] = dict(dropped)
                self._in_flight = {w["windowId"] for w in windows}
            try:
                status = self._api.request("POST", BYPASS_PATH, json=body).status_code
            except httpx.HTTPError as exc:
                self._sent(False)
                self.report_errors += 1
                _log.warning("execlave: bypass report not delivered (%s); will retry", type(exc).__name__)
                return False
            except Exception:
                self._sent(False)
                raise
            self._sent(200 <= status < 300 or status in _FATAL)
            if 200 <= status < 300 or status in _FATAL:
                if status in _FATAL:
                    _log.warning("execlave: Execlave refused a bypass report (HTTP %s); dropped", status)
                else:
                    self.reported += len(windows)
                sent = {w["windowId"] for w in windows}
                with self._lock:
                    self._closed = [w for w in self._closed if w["windowId"] not in sent]
                    if dropped is not None and self._pending_drop is dropped:
                        self._pending_drop = None
                continue
            self.report_errors += 1
            _log.warning("execlave: bypass report answered HTTP %s; will retry", status)
            return False

    def _ensure_thread(self) -> None:
        if self._thread is not None or self._stop.is_set():
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="execlave-bypass-report", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._tick(close_all=False)
                with self._send_lock:
                    self._send_all()
            except Exception:
                _log.debug("execlave: bypass report round failed", exc_info=True)

    def close(self, timeout: float) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
