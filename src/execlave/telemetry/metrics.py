"""execlave's metrics, through the OpenTelemetry metrics API (meter scope ``execlave``).

No-op unless a ``MeterProvider`` is configured: ``Execlave(meter_provider=...)``, else the
application's global one (set before or after the client is created). Names, units and
attributes are documented in ``docs/telemetry.md``. Recording never raises: a metrics fault
must not break the agent or change a decision.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.util.types import AttributeValue

from .._version import __version__
from ..policy.types import Decision
from . import names
from .bounds import bound_name

logger = logging.getLogger("execlave")

DURATION = names.METRIC_OPERATION_DURATION
TIMED_OPERATIONS = frozenset({names.OP_INVOKE_AGENT, names.OP_EXECUTE_TOOL})
"""The operations whose duration is recorded (``operation``); others are not timed."""
_NAMES = frozenset({names.GEN_AI_TOOL_NAME, names.GEN_AI_AGENT_NAME})
# GenAI semconv explicit bucket boundaries for gen_ai.client.operation.duration (seconds).
_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_DROP_REASONS = {
    "spans_dropped_queue_full": "queue_full",
    "spans_dropped_export_failed": "export_failed",
    "spans_dropped_after_shutdown": "after_shutdown",
}


def _pick(attributes: Mapping[str, AttributeValue] | None, *keys: str) -> dict[str, AttributeValue]:
    if not attributes:
        return {}
    # Names may be model-chosen: bounded (masked, escaped, 128 characters) like on spans.
    return {k: bound_name(attributes[k]) if k in _NAMES else attributes[k] for k in keys if k in attributes}


def _frozen(build: Callable[..., dict[str, AttributeValue]]) -> Callable[..., dict[str, AttributeValue]]:
    """``build`` with its results kept for repeated values (the same agent and operation every
    round): the per-check metric attributes are then one lookup. Never mutated after."""
    cached = functools.lru_cache(maxsize=1024)(build)

    def attributes(*values: Any) -> dict[str, AttributeValue]:
        try:
            return cached(*values)
        except TypeError:  # an unhashable attribute value (a list): built each time
            return build(*values)

    return attributes


@_frozen
def _decision_attributes(agent_id: Any, operation: Any, outcome: str) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = {}
    if agent_id is not None:
        attrs[names.GEN_AI_AGENT_ID] = agent_id
    if operation is not None:
        attrs[names.GEN_AI_OPERATION_NAME] = operation
    attrs[names.POLICY_DECISION] = outcome
    return attrs


@_frozen
def _duration_attributes(
    operation: Any, agent: Any, tool: Any, error: str | None
) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = {names.GEN_AI_OPERATION_NAME: operation}
    if agent is not None:
        attrs[names.GEN_AI_AGENT_NAME] = bound_name(agent)
    if tool is not None:
        attrs[names.GEN_AI_TOOL_NAME] = bound_name(tool)
    if error is not None:
        attrs["error.type"] = error
    return attrs


_NO_OPS = frozenset({metrics.NoOpCounter, metrics.NoOpHistogram})
_UNBOUND = object()


class Metrics:
    """The instruments, created once per client."""

    def __init__(
        self, meter_provider: Any = None, stats: Callable[[], Mapping[str, int]] | None = None
    ) -> None:
        provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        meter = provider.get_meter("execlave", __version__)
        self.decisions = meter.create_counter(
            names.METRIC_DECISIONS, unit="{decision}", description="Policy checks by outcome"
        )
        self.violations = meter.create_counter(
            names.METRIC_VIOLATIONS, unit="{violation}", description="Policy violations by policy"
        )
        self.blocked_tools = meter.create_counter(
            names.METRIC_TOOLS_BLOCKED, unit="{call}", description="Tool calls blocked before they ran"
        )
        self.bypasses = meter.create_counter(
            names.METRIC_BYPASSES, unit="{check}", description="Checks passed undecided (fail_open)"
        )
        try:
            self.duration = meter.create_histogram(
                DURATION,
                unit="s",
                description="Duration of agent rounds and tool executions",
                explicit_bucket_boundaries_advisory=list(_BUCKETS),
            )
        except TypeError:  # opentelemetry-api before 1.23: no advisory buckets
            self.duration = meter.create_histogram(
                DURATION, unit="s", description="Duration of agent rounds and tool executions"
            )
        if stats is not None:
            ref = _weak(stats)

            def dropped(options: CallbackOptions) -> Iterable[Observation]:
                current = ref()
                if current is None:
                    return []
                values = current()
                return [
                    Observation(values.get(k, 0), {names.DROP_REASON: r}) for k, r in _DROP_REASONS.items()
                ]

            def exported(options: CallbackOptions) -> Iterable[Observation]:
                current = ref()
                return [] if current is None else [Observation(current().get("spans_exported", 0))]

            meter.create_observable_counter(
                names.METRIC_SPANS_DROPPED,
                [dropped],
                unit="{span}",
                description="Spans execlave's exporters dropped",
            )
            meter.create_observable_counter(
                names.METRIC_SPANS_EXPORTED,
                [exported],
                unit="{span}",
                description="Spans execlave's exporters sent",
            )

    def decisions_live(self) -> bool:
        """False when :meth:`decision` would record nothing (no meter provider yet, or a no-op one)."""
        instrument = self.decisions  # one provider makes (or binds) all the instruments
        # Not a no-op instrument, and not the API's placeholder before any meter provider is set
        # (it binds itself when one is set later: asked again for every check).
        real = getattr(instrument, "_real_instrument", _UNBOUND)
        if real is _UNBOUND:
            return type(instrument) not in _NO_OPS
        return real is not None

    def durations_live(self) -> bool:
        """False when :meth:`operation` would record nothing."""
        instrument = self.duration
        real = getattr(instrument, "_real_instrument", _UNBOUND)  # as in decisions_live
        if real is _UNBOUND:
            return type(instrument) not in _NO_OPS
        return real is not None

    def decision(self, decision: Decision, span_attributes: Mapping[str, AttributeValue] | None) -> None:
        """One policy check's decision: outcome, violations by policy, blocked tool calls, bypasses."""
        try:
            given = span_attributes or {}
            self.decisions.add(
                1,
                _decision_attributes(
                    given.get(names.GEN_AI_AGENT_ID), given.get(names.GEN_AI_OPERATION_NAME), decision.outcome
                ),
            )
            if not (decision.violations or decision.bypasses):
                return
            agent = _pick(span_attributes, names.GEN_AI_AGENT_ID)
            blocked_tools: set[str] = set()
            for v in decision.violations:
                attrs: dict[str, AttributeValue] = dict(agent)
                for key, name in (
                    ("policyId", names.POLICY_ID),
                    ("enforcementMode", names.POLICY_ENFORCEMENT_MODE),
                    ("target", names.VIOLATION_TARGET),
                ):
                    value = v.get(key)
                    if value is not None:
                        attrs[name] = str(value)
                self.violations.add(1, attrs)
                tool = v.get("toolName")
                if v.get("enforcementMode") == "block" and v.get("target") == "tool_call" and tool:
                    blocked_tools.add(bound_name(tool))
            for tool in sorted(blocked_tools):
                self.blocked_tools.add(1, {**agent, names.GEN_AI_TOOL_NAME: tool})
            for reason in decision.bypasses:
                self.bypasses.add(1, {**agent, names.BYPASS_REASON: str(reason)})
        except Exception:
            logger.debug("execlave: could not record decision metrics", exc_info=True)

    def halted(self, outcome: str, span_attributes: Mapping[str, AttributeValue] | None) -> None:
        """A check that ended without a decision: ``paused`` (kill switch) or ``error`` (fail closed)."""
        try:
            base = _pick(span_attributes, names.GEN_AI_AGENT_ID, names.GEN_AI_OPERATION_NAME)
            self.decisions.add(1, {**base, names.POLICY_DECISION: outcome})
        except Exception:
            logger.debug("execlave: could not record decision metrics", exc_info=True)

    def operation(
        self, seconds: float, span_attributes: Mapping[str, AttributeValue] | None, exc: BaseException | None
    ) -> None:
        """Duration of an ``invoke_agent`` round or an ``execute_tool`` execution."""
        try:
            if not span_attributes:
                return
            operation = span_attributes.get(names.GEN_AI_OPERATION_NAME)
            if operation not in TIMED_OPERATIONS:
                return
            attrs = _duration_attributes(
                operation,
                span_attributes.get(names.GEN_AI_AGENT_NAME),
                span_attributes.get(names.GEN_AI_TOOL_NAME),
                None if exc is None else type(exc).__qualname__,
            )
            self.duration.record(max(seconds, 0.0), attrs)
        except Exception:
            logger.debug("execlave: could not record duration metrics", exc_info=True)


def _weak(fn: Callable[[], Mapping[str, int]]) -> Callable[[], Callable[[], Mapping[str, int]] | None]:
    """A weak reference to a bound method (so the meter never keeps a client alive)."""
    try:
        return weakref.WeakMethod(fn)  # type: ignore[arg-type,unused-ignore]
    except TypeError:
        return lambda: fn
