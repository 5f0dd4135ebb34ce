"""Governed spans: open a span, run the enforcement check in execlave's own code path, record
the decision on the span, and raise a block inside the span so the SDK still ends and exports it.

The check runs whatever the tracing setup (sampled out, ``OTEL_SDK_DISABLED``, no-op or
non-SDK provider): recording is best effort, enforcement is not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.trace import INVALID_SPAN, Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from ..errors import (
    AgentPausedError,
    EnforcementUnavailableError,
    ExeclaveError,
    PolicyBlockedError,
    blocked_error,
)
from ..policy.types import ALLOW, Decision
from . import names
from .bounds import (
    MAX_MESSAGE_CHARS,
    TRUNCATED,
    Masker,
    bound_name,
    bound_text,
    bound_violation,
    exception_attributes,
    status_text,
)
from .metrics import Metrics

logger = logging.getLogger("execlave")

_VIOLATION_KEYS = {
    "policyId": names.POLICY_ID,
    "policyName": names.POLICY_NAME,
    "policyType": names.POLICY_TYPE,
    "enforcementMode": names.POLICY_ENFORCEMENT_MODE,
    "severity": names.VIOLATION_SEVERITY,
    "message": names.VIOLATION_MESSAGE,
    "target": names.VIOLATION_TARGET,
    "toolName": names.VIOLATION_TOOL_NAME,
}


def violation_attributes(
    violation: Mapping[str, Any], *, with_excerpt: bool = False, masker: Masker | None = None
) -> dict[str, AttributeValue]:
    """Event attributes for one violation; every text masked and bounded (``toolName`` as a name)."""
    attrs: dict[str, AttributeValue] = {}
    for key, name in _VIOLATION_KEYS.items():
        value = violation.get(key)
        if value is None:
            continue
        if key == "toolName":
            attrs[name] = bound_name(value, masker)
        elif isinstance(value, (bool, int, float)):
            attrs[name] = value
        else:
            attrs[name] = bound_text(value, MAX_MESSAGE_CHARS, masker)
    if with_excerpt and isinstance(violation.get("excerpt"), str):
        attrs[names.VIOLATION_EXCERPT] = bound_text(violation["excerpt"], MAX_MESSAGE_CHARS, masker)
    return attrs


def record_decision(span: Span, decision: Decision) -> None:
    """Decision attributes on the span plus one ``execlave.policy.violation`` event per violation."""
    try:
        span.set_attributes(
            {
                names.POLICY_DECISION: decision.outcome,
                names.POLICY_VIOLATION_COUNT: len(decision.violations),
                names.POLICY_IDS: list(decision.violated_policy_ids),
                names.POLICY_SET_VERSION: decision.policy_set_version,
            }
        )
    except Exception:
        logger.debug("execlave: could not record decision attributes", exc_info=True)


def record_events(
    span: Span, decision: Decision, *, with_excerpt: bool, masker: Masker | None = None
) -> None:
    if not (decision.violations or decision.bypasses):
        return
    for reason in decision.bypasses:
        try:
            span.set_attribute(names.ENFORCEMENT_BYPASSED, True)
            span.add_event(names.EVENT_BYPASS, {names.BYPASS_REASON: reason})
        except Exception:
            logger.debug("execlave: could not record a bypass", exc_info=True)
    for violation in decision.violations:
        try:
            span.add_event(
                names.EVENT_VIOLATION,
                violation_attributes(violation, with_excerpt=with_excerpt, masker=masker),
            )
        except Exception:
            logger.debug("execlave: could not record a violation event", exc_info=True)


def _unavailable(exc: Exception) -> EnforcementUnavailableError:
    return EnforcementUnavailableError(
        f"execlave could not evaluate policies ({type(exc).__name__}); failing closed"
    )


class GovernedSpan:
    """Handle yielded by :meth:`Telemetry.governed_span`."""

    __slots__ = (
        "_capture",
        "_decisions",
        "_masker",
        "_max_length",
        "_own_block",
        "decision",
        "metric_attributes",
        "metrics",
        "on_decision",
        "recording",
        "span",
    )

    def __init__(
        self,
        span: Span,
        *,
        capture_content: bool,
        masker: Callable[[str], str],
        max_attribute_length: int = 8192,
        on_decision: Callable[[Decision], None] | None = None,
        metrics: Metrics | None = None,
        metric_attributes: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        self.on_decision = on_decision  # called with each decision; never raises
        self.metrics = metrics  # each decision is counted there (when a meter would receive it)
        self.metric_attributes = metric_attributes
        self._max_length = max_attribute_length
        self.decision: Decision = ALLOW
        self._decisions: list[Decision] = []
        self._capture = capture_content
        self._masker = masker
        self._own_block: PolicyBlockedError | None = None
        self.span = span
        try:  # as use_span (inlined: this runs for every span)
            self.recording = span is not INVALID_SPAN and bool(span.is_recording())
        except Exception:
            self.recording = False

    def use_span(self, span: Span) -> None:
        """Record on ``span`` from now on. Whether it records is asked once: on a span that
        records nothing (no-op tracer, sampled out) decisions, events and content are not
        built at all; the decision and the raise are the same."""
        self.span = span
        try:
            self.recording = span is not INVALID_SPAN and bool(span.is_recording())
        except Exception:
            self.recording = False

    def check(self, fn: Callable[[], Decision], *, raise_on_block: bool = True) -> Decision:
        """Run one enforcement check, merge its decision into this span's, raise on block.

        ``AgentPausedError`` / ``EnforcementUnavailableError`` / ``PolicyBlockedError`` pass
        through; any other exception becomes ``EnforcementUnavailableError`` (fail closed).
        """
        try:
            decision = fn()
        except ExeclaveError:  # a decision, an outage in fail_closed, a refused key: as raised
            raise
        except Exception as exc:
            raise _unavailable(exc) from exc
        # What follows runs on every check: kept in this one frame.
        if not isinstance(decision, Decision):
            raise EnforcementUnavailableError(
                f"execlave policy check returned {type(decision).__name__}, not a Decision; failing closed"
            )
        decisions = self._decisions
        if decisions or self.recording:
            self._add(decision)
        else:  # the first decision on a span that records nothing (as _add, inlined)
            decisions.append(decision)
            self.decision = decision
        metrics = self.metrics
        if metrics is not None and metrics.decisions_live():
            metrics.decision(decision, self.metric_attributes)  # never raises
        if self.on_decision is not None:
            self.on_decision(decision)
        if self.recording and (decision.violations or decision.bypasses):
            record_events(self.span, decision, with_excerpt=self._capture, masker=self._masker)
        if decision.outcome == "block" and raise_on_block:
            # Names and messages in the error are bounded like on the span: apps log it and
            # hand it to their clients.
            error = blocked_error([bound_violation(v, self._masker) for v in decision.blocking_violations])
            self._own_block = error
            raise error
        return decision

    def record_content(self, attribute: str, text: str) -> None:
        """Record ``text`` (PII-masked, then cut to the attribute length limit) on the span, only
        when content capture is on. The whole text is masked before it is cut."""
        if not (self._capture and self.recording) or not isinstance(text, str):
            return
        try:
            masked = self._masker(text)
        except Exception:
            logger.debug("execlave: masking failed; content not recorded", exc_info=True)
            return
        if len(masked) > self._max_length:
            masked = masked[: self._max_length - len(TRUNCATED)] + TRUNCATED
        try:
            self.span.set_attribute(attribute, masked)
        except Exception:
            logger.debug("execlave: could not record content", exc_info=True)

    def set_error(self, description: str) -> None:
        """ERROR status with ``description`` masked, escaped and bounded."""
        if not self.recording:
            return
        try:
            self.span.set_status(
                Status(StatusCode.ERROR, bound_text(description, MAX_MESSAGE_CHARS, self._masker))
            )
        except Exception:
            logger.debug("execlave: could not set the span status", exc_info=True)

    # -- used by governed_span --

    def _add(self, decision: Decision) -> None:
        decisions = self._decisions
        decisions.append(decision)
        self.decision = decision if len(decisions) == 1 else Decision.merge(decisions)
        if self.recording:
            record_decision(self.span, self.decision)

    def _on_block_passing(self, error: PolicyBlockedError) -> None:
        if error is self._own_block:
            return
        # A block raised deeper (a child governed span or a check by hand): this span is blocked too.
        self._add(Decision("block", tuple(error.violations)))

    def _fail(self, exc: BaseException) -> None:
        if not self.recording:
            return
        try:
            if isinstance(exc, Exception):
                # Never the raw text: an exception may quote the data it failed on.
                limit = self._max_length if self._capture else MAX_MESSAGE_CHARS
                self.span.add_event("exception", exception_attributes(exc, limit=limit, masker=self._masker))
            self.span.set_status(Status(StatusCode.ERROR, status_text(exc, self._masker)))
            if isinstance(exc, AgentPausedError):
                self.span.set_attribute(names.AGENT_PAUSED, True)
                self.span.set_attribute(names.POLICY_DECISION, "block")
            elif isinstance(exc, EnforcementUnavailableError):
                self.span.set_attribute(names.ENFORCEMENT_UNAVAILABLE, True)
        except Exception:
            logger.debug("execlave: could not record an error on the span", exc_info=True)


_new_handle = object.__new__


def unrecorded_span(
    masker: Callable[[str], str],
    capture_content: bool,
    max_attribute_length: int,
    metrics: Metrics | None,
    metric_attributes: Mapping[str, AttributeValue] | None,
) -> GovernedSpan:
    """``GovernedSpan(INVALID_SPAN, ...)`` without the keyword parsing and the recording probe:
    the handle of a governed span on a tracer that never records (built for every check there)."""
    governed: GovernedSpan = _new_handle(GovernedSpan)
    governed.on_decision = None
    governed.metrics = metrics
    governed.metric_attributes = metric_attributes
    governed._max_length = max_attribute_length
    governed.decision = ALLOW
    governed._decisions = []
    governed._capture = capture_content
    governed._masker = masker
    governed._own_block = None
    governed.span = INVALID_SPAN
    governed.recording = False
    return governed
