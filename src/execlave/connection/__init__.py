"""The connection to Execlave's API that an :class:`~execlave.Execlave` client owns (only with an
API key): server-side decisions, approvals, the agent registry with its kill-switch status poll
and heartbeat, fail-open reports; and the trace exporters (``ingest``, ``execlave_otlp``), which the
client hands to the telemetry layer. Only the exporters touch OpenTelemetry's SDK interfaces.

Routes used (all under ``{base_url}``, ``Authorization: Bearer <key>``):
``POST /api/v1/policies/enforce``, ``GET /api/v1/approvals/{id}``, ``POST /api/v1/approvals/{id}/verify``,
``POST /api/v1/agents``, ``GET /api/v1/agents?search=``, ``GET /api/v1/agents/{uuid}/status-poll``,
``POST /api/v1/agents/{uuid}/heartbeat``, ``POST /api/v1/sdk/bypass-windows``,
``POST /api/v1/traces/ingest``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from ..policy.types import CheckRequest, Decision
from ._http import Api as Api
from ._http import Secret as Secret
from ._http import normalise_base_url as normalise_base_url
from ._http import parse_api_key as parse_api_key
from ._http import redact_url as redact_url
from ._http import unwrap as unwrap
from .agents import Agents
from .approvals import Approvals
from .bypass import BypassWindows
from .decisions import OUTAGE_MODES as OUTAGE_MODES
from .decisions import Breaker, Decider
from .decisions import OutageMode as OutageMode


def validate_timings(**seconds: object) -> None:
    """Every timing option is a number of seconds > 0 (``decision_cache_ttl``: >= 0, 0 = off)."""
    for name, value in seconds.items():
        zero_ok = name == "decision_cache_ttl"
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not (value >= 0 if zero_ok else value > 0):  # type: ignore[operator]
            rule = ">= 0 seconds (0 disables the cache)" if zero_ok else "a number of seconds > 0"
            raise ValueError(f"{name} must be {rule}; got {value!r}")


class Connection:
    """Builds every part (nothing here touches the network or starts a thread until :meth:`start`)."""

    def __init__(
        self,
        *,
        key: Secret,
        base_url: str,
        environment: str,
        enforcement_on_outage: OutageMode = "fail_open",
        plan_limit_behavior: OutageMode = "fail_open",
        request_timeout: float = 5.0,
        decision_cache_ttl: float = 60.0,
        approval_timeout: float = 300.0,
        approval_poll_interval: float = 5.0,
        status_poll_interval: float = 15.0,
        heartbeat_interval: float = 600.0,
        breaker_threshold: int = 3,
        breaker_reset: float = 60.0,
        bypass_report_interval: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        # The options arrive validated: the client checks them (validate_timings, the outage modes)
        # with or without a key, before anything is built.
        self.api = Api(
            base_url, key, timeout=request_timeout, transport=transport, async_transport=async_transport
        )
        self.bypass = BypassWindows(self.api, interval=bypass_report_interval)
        self.approvals = Approvals(self.api, timeout=approval_timeout, poll_interval=approval_poll_interval)
        self.agents = Agents(
            self.api,
            environment=environment,
            status_poll_interval=status_poll_interval,
            heartbeat_interval=heartbeat_interval,
            on_pause=lambda _agent: self.decider.cache.clear(),
        )
        self.decider = Decider(
            self.api,
            agents=self.agents,
            approvals=self.approvals,
            bypass=self.bypass,
            environment=environment,
            enforcement_on_outage=enforcement_on_outage,
            plan_limit_behavior=plan_limit_behavior,
            cache_ttl=decision_cache_ttl,
            breaker=Breaker(breaker_threshold, breaker_reset),
        )

    def __repr__(self) -> str:
        return f"Connection(base_url={redact_url(self.api.base_url)!r}, api_key=<redacted>)"

    def start(self) -> None:
        self.agents.start()

    def check(self, request: CheckRequest, history: Sequence[Mapping[str, Any]] | None = None) -> Decision:
        return self.decider.decide(request, history)

    async def acheck(
        self, request: CheckRequest, history: Sequence[Mapping[str, Any]] | None = None
    ) -> Decision:
        return await self.decider.adecide(request, history)

    def flush(self) -> bool:
        """Deliver fail-open reports now (bounded by the request timeout)."""
        return self.bypass.flush()

    def close(self, timeout: float) -> None:
        """Stop the background threads. The HTTP clients stay usable: enforcement keeps working."""
        self.agents.close(timeout)
        self.bypass.close(timeout)

    def stats(self) -> dict[str, int]:
        out = dict(self.decider.counters)
        out["circuit_open"] = int(self.decider.breaker.is_open)
        out["bypass_windows_reported"] = self.bypass.reported
        out["bypass_windows_pending"] = self.bypass.pending
        out["agent_status_errors"] = self.agents.poll_errors
        return out
