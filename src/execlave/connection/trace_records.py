"""Trace-ingest records: one execlave span -> one record of the shape Execlave's published
client (1.9.1) sends to ``POST /api/v1/traces/ingest``. In short (the full mapping is in
``docs/telemetry.md``, "Traces to Execlave"):

- ``invoke_agent {agent}`` rounds -> ``spanType: "agent"``; ``check_tool`` / ``execute_tool``
  spans -> ``"tool"`` with ``parentTraceId`` = the record of their parent span;
  ``enforce_policy`` spans -> ``"guardrail"``; any other ``execlave`` span -> ``"chain"``.
- ``status``: ``policy_blocked`` when the decision is ``block`` (or the agent is paused),
  ``error`` for any other ERROR span, else ``success``.
- ``input`` / ``output`` only when content capture is on, PII-masked, at most
  :data:`MAX_CONTENT_CHARS` characters each; an application's error message likewise.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from ..errors import ExeclaveError

__all__ = ["MAX_CONTENT_CHARS", "MAX_TEXT_CHARS", "TRACE_STATUSES", "Masker", "span_to_record"]

logger = logging.getLogger("execlave")

MAX_CONTENT_CHARS = 32_768
"""``input`` / ``output`` are cut to this many characters, after masking."""
MAX_TEXT_CHARS = 1_024
"""Bound on every other string sent (error messages, metadata values)."""
MAX_VIOLATIONS = 20
TRACE_STATUSES = frozenset(
    {"success", "error", "timeout", "policy_blocked", "limit_exceeded", "flagged_for_review"}
)
"""The platform's trace statuses; execlave sends ``success``, ``error`` and ``policy_blocked``."""
_INPUT_ATTRIBUTES = ("gen_ai.input.messages", "gen_ai.tool.call.arguments", "gen_ai.prompt")
_OUTPUT_ATTRIBUTES = ("gen_ai.output.messages", "gen_ai.tool.call.result", "gen_ai.completion")
_SPAN_TYPES = {"invoke_agent": "agent", "execute_tool": "tool", "check_tool": "tool"}
_TOOL_PHASES = {"execute_tool": "executed", "check_tool": "requested"}
_WITHHELD = "message not sent: content capture is off"

Masker = Callable[[str], str]


def _bounded(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "\n".join(str(v) for v in value)
    return str(value)


def _json_value(value: object) -> Any:
    """An attribute value as JSON: bounded strings, finite numbers, lists of those."""
    if isinstance(value, str):
        return _bounded(value)
    if isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in list(value)[:100]]
    return _bounded(str(value))


def _iso(ns: int | None) -> str:
    seconds = (ns or time.time_ns()) / 1e9
    whole = time.gmtime(seconds)
    millis = int((seconds % 1) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", whole) + f".{millis:03d}Z"


def _record_id(span_id: int) -> str:
    return f"tr_{span_id:016x}"


_own_errors: frozenset[str] | None = None


def _own_error_names() -> frozenset[str]:
    """Names of execlave's own exceptions: their messages are execlave's text, not the app's."""
    global _own_errors
    if _own_errors is None:
        names: set[str] = set()
        todo: list[type] = [ExeclaveError]
        while todo:
            cls = todo.pop()
            names.add(cls.__name__)
            todo.extend(cls.__subclasses__())
        _own_errors = frozenset(names)
    return _own_errors


def _mask(text: str, masker: Masker) -> str | None:
    try:
        return masker(text)
    except Exception:
        logger.debug("execlave: masking failed; text not sent to Execlave", exc_info=True)
        return None


def _content(attrs: Mapping[str, Any], names: Iterable[str], masker: Masker) -> tuple[str | None, bool]:
    for name in names:
        value = attrs.get(name)
        if value is None or value == "":
            continue
        masked = _mask(_as_text(value), masker)
        if masked is None:
            return None, False
        if len(masked) > MAX_CONTENT_CHARS:
            return masked[:MAX_CONTENT_CHARS], True
        return masked, False
    return None, False


def _violations(span: ReadableSpan, masker: Masker) -> list[dict[str, Any]]:
    keys = {
        "execlave.policy.id": "policyId",
        "execlave.policy.name": "policyName",
        "execlave.policy.type": "policyType",
        "execlave.policy.enforcement_mode": "enforcementMode",
        "execlave.violation.severity": "severity",
        "execlave.violation.target": "target",
        "execlave.violation.tool_name": "toolName",
    }
    out: list[dict[str, Any]] = []
    for event in span.events:
        if event.name != "execlave.policy.violation" or len(out) >= MAX_VIOLATIONS:
            continue
        a = event.attributes or {}
        item = {field: _json_value(a[key]) for key, field in keys.items() if a.get(key) is not None}
        message = a.get("execlave.violation.message")
        if isinstance(message, str):
            masked = _mask(message, masker)
            if masked is not None:
                item["message"] = _bounded(masked)
        out.append(item)
    return out


def _exception(span: ReadableSpan) -> tuple[str | None, str | None]:
    for event in reversed(span.events):
        if event.name == "exception":
            a = event.attributes or {}
            kind, message = a.get("exception.type"), a.get("exception.message")
            return (
                kind.rsplit(".", 1)[-1] if isinstance(kind, str) and kind else None,  # the class name
                message if isinstance(message, str) else None,
            )
    return None, None


def _error_fields(
    span: ReadableSpan, status: str, attrs: Mapping[str, Any], capture_content: bool, masker: Masker
) -> dict[str, str]:
    kind, message = _exception(span)
    if status == "policy_blocked":
        if attrs.get("execlave.agent.paused"):
            text = "agent paused (kill switch)"
        else:
            ids = attrs.get("execlave.policy.ids") or ()
            text = "blocked by policy " + ", ".join(str(i) for i in ids) if ids else "blocked by policy"
        return {"errorType": kind or "PolicyBlockedError", "errorMessage": _bounded(text)}
    if status != "error":
        return {}
    if message is None:
        message = span.status.description
    if message and not capture_content and kind not in _own_error_names():
        message = f"{kind or 'error'} ({_WITHHELD})"
    masked = (_mask(message, masker) or "").strip() if message else ""
    return {
        "errorType": _bounded(kind or "UnspecifiedError"),
        "errorMessage": _bounded(masked or "No error message provided"),
    }


def span_to_record(
    span: ReadableSpan, *, environment: str | None, capture_content: bool, masker: Masker
) -> dict[str, Any]:
    """The trace-ingest record for one execlave span (see ``docs/telemetry.md``)."""
    attrs: Mapping[str, Any] = span.attributes or {}
    context = span.context
    span_id = context.span_id if context is not None else 0
    operation = attrs.get("gen_ai.operation.name")
    if not isinstance(operation, str):
        operation = ""
    if operation in _SPAN_TYPES:
        span_type = _SPAN_TYPES[operation]
    elif attrs.get("execlave.operation") == "enforce_policy":
        span_type = "guardrail"
    else:
        span_type = "chain"

    decision = attrs.get("execlave.policy.decision")
    if decision == "block" or attrs.get("execlave.agent.paused"):
        status = "policy_blocked"
    elif span.status.status_code == StatusCode.ERROR:
        status = "error"
    else:
        status = "success"

    start, end = span.start_time or 0, span.end_time or span.start_time or 0
    record: dict[str, Any] = {
        "traceId": _record_id(span_id),
        "timestamp": _iso(span.start_time),
        "durationMs": max(int((end - start) / 1_000_000), 0),
        "status": status,
        "spanType": span_type,
    }
    if environment:
        record["environment"] = environment
    identity: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("agentId", ("gen_ai.agent.id",)),
        ("sessionId", ("gen_ai.conversation.id",)),
        ("userId", ("user.id", "enduser.id")),
    )
    for field, names in identity:
        for name in names:
            value = attrs.get(name)
            if isinstance(value, str) and value:
                record[field] = _bounded(value, 256)
                break
    parent = span.parent
    if span_type == "tool" and parent is not None and parent.span_id:
        record["parentTraceId"] = _record_id(parent.span_id)
    record.update(_error_fields(span, status, attrs, capture_content, masker))

    metadata: dict[str, Any] = {
        "spanName": _bounded(span.name, 256),
        "instrumentationScope": "execlave",
        "contentCaptured": capture_content,
    }
    if context is not None:
        metadata["otelTraceId"] = f"{context.trace_id:032x}"
        metadata["otelSpanId"] = f"{context.span_id:016x}"
    if parent is not None and parent.span_id:
        metadata["otelParentSpanId"] = f"{parent.span_id:016x}"
    if operation:
        metadata["operation"] = operation
    if operation in _TOOL_PHASES:
        metadata["toolPhase"] = _TOOL_PHASES[operation]
    for key, name in (
        ("agentName", "gen_ai.agent.name"),
        ("toolName", "gen_ai.tool.name"),
        ("toolCallId", "gen_ai.tool.call.id"),
        ("handoff", "execlave.tool.handoff"),
        ("policyDecision", "execlave.policy.decision"),
        ("violationCount", "execlave.policy.violation_count"),
        ("policyIds", "execlave.policy.ids"),
        ("policySetVersion", "execlave.policy.set_version"),
        ("agentPaused", "execlave.agent.paused"),
        ("enforcementUnavailable", "execlave.enforcement.unavailable"),
        ("enforcementBypassed", "execlave.enforcement.bypassed"),
    ):
        value = attrs.get(name)
        if value is not None:
            metadata[key] = _json_value(value)
    reasons = [
        _json_value((e.attributes or {}).get("execlave.bypass.reason"))
        for e in span.events
        if e.name == "execlave.enforcement.bypass"
    ]
    if reasons:
        metadata["bypassReasons"] = reasons[:MAX_VIOLATIONS]
    violations = _violations(span, masker)
    if violations:
        metadata["violations"] = violations

    if capture_content:
        for field, names in (("input", _INPUT_ATTRIBUTES), ("output", _OUTPUT_ATTRIBUTES)):
            text, cut = _content(attrs, names, masker)
            if text is not None:
                record[field] = text
                if cut:
                    metadata[f"{field}Truncated"] = True
    record["metadata"] = metadata
    return record
