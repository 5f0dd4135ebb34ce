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
from ..telemetry import names

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
_INPUT_ATTRIBUTES = (names.GEN_AI_INPUT_MESSAGES, names.GEN_AI_TOOL_CALL_ARGUMENTS, names.GEN_AI_PROMPT)
_OUTPUT_ATTRIBUTES = (names.GEN_AI_OUTPUT_MESSAGES, names.GEN_AI_TOOL_CALL_RESULT, names.GEN_AI_COMPLETION)
# By operation: gen_ai.operation.name, else execlave.operation (check_tool, enforce_policy).
_SPAN_TYPES = {
    names.OP_INVOKE_AGENT: "agent",
    names.OP_EXECUTE_TOOL: "tool",
    names.OP_CHECK_TOOL: "tool",
    names.OP_ENFORCE_POLICY: "guardrail",
}
_TOOL_PHASES = {names.OP_EXECUTE_TOOL: "executed", names.OP_CHECK_TOOL: "requested"}
_VIOLATION_FIELDS = {
    names.POLICY_ID: "policyId",
    names.POLICY_NAME: "policyName",
    names.POLICY_TYPE: "policyType",
    names.POLICY_ENFORCEMENT_MODE: "enforcementMode",
    names.VIOLATION_SEVERITY: "severity",
    names.VIOLATION_TARGET: "target",
    names.VIOLATION_TOOL_NAME: "toolName",
}
_IDENTITY_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("agentId", (names.GEN_AI_AGENT_ID,)),
    ("sessionId", (names.GEN_AI_CONVERSATION_ID,)),
    ("userId", (names.USER_ID, "enduser.id")),
)
_METADATA_FIELDS = (
    ("agentName", names.GEN_AI_AGENT_NAME),
    ("toolName", names.GEN_AI_TOOL_NAME),
    ("toolCallId", names.GEN_AI_TOOL_CALL_ID),
    ("handoff", names.TOOL_HANDOFF),
    ("policyDecision", names.POLICY_DECISION),
    ("violationCount", names.POLICY_VIOLATION_COUNT),
    ("policyIds", names.POLICY_IDS),
    ("policySetVersion", names.POLICY_SET_VERSION),
    ("agentPaused", names.AGENT_PAUSED),
    ("enforcementUnavailable", names.ENFORCEMENT_UNAVAILABLE),
    ("enforcementBypassed", names.ENFORCEMENT_BYPASSED),
)
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
    keys = _VIOLATION_FIELDS
    out: list[dict[str, Any]] = []
    for event in span.events:
        if event.name != names.EVENT_VIOLATION or len(out) >= MAX_VIOLATIONS:
            continue
        a = event.attributes or {}
        item = {field: _json_value(a[key]) for key, field in keys.items() if a.get(key) is not None}
        message = a.get(names.VIOLATION_MESSAGE)
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
        if attrs.get(names.AGENT_PAUSED):
            text = "agent paused (kill switch)"
        else:
            ids = attrs.get(names.POLICY_IDS) or ()
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
    operation = attrs.get(names.GEN_AI_OPERATION_NAME) or attrs.get(names.EXECLAVE_OPERATION)
    if not isinstance(operation, str):
        operation = ""
    span_type = _SPAN_TYPES.get(operation, "chain")

    decision = attrs.get(names.POLICY_DECISION)
    if decision == "block" or attrs.get(names.AGENT_PAUSED):
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
    for field, keys in _IDENTITY_FIELDS:
        for name in keys:
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
    for key, name in _METADATA_FIELDS:
        value = attrs.get(name)
        if value is not None:
            metadata[key] = _json_value(value)
    reasons = [
        _json_value((e.attributes or {}).get(names.BYPASS_REASON))
        for e in span.events
        if e.name == names.EVENT_BYPASS
    ]
    if reasons:
        metadata["bypassReasons"] = reasons[:MAX_VIOLATIONS]
    violations = _violations(span, masker)
    if violations:
        metadata["violations"] = violations

    if capture_content:
        for field, keys in (("input", _INPUT_ATTRIBUTES), ("output", _OUTPUT_ATTRIBUTES)):
            text, cut = _content(attrs, keys, masker)
            if text is not None:
                record[field] = text
                if cut:
                    metadata[f"{field}Truncated"] = True
    record["metadata"] = metadata
    return record
