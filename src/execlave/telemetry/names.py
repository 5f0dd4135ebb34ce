"""The span vocabulary: every span name prefix, attribute key, event name and operation value
execlave writes, in one place (``docs/telemetry.md``, "Span vocabulary", lists them).

``gen_ai.*`` keys are OpenTelemetry's GenAI semantic conventions: taken from
``opentelemetry-semantic-conventions`` when the installed version defines them, else written
here (the oldest supported SDK, 1.27, pulls in 0.48b0, which has only ``gen_ai.operation.name``,
``gen_ai.prompt`` and ``gen_ai.completion``). ``execlave.*`` keys are execlave's own.

Imports nothing from execlave; telemetry, the connection and the adapters all read it.
"""

from __future__ import annotations

from types import ModuleType
from typing import Final

_gen_ai: ModuleType | None
try:
    from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _gen_ai
except ImportError:  # pragma: no cover - a semantic-conventions release without the module
    _gen_ai = None


def _semconv(constant: str, value: str) -> str:
    """The semantic-conventions constant when the installed release has it (and agrees), else ``value``."""
    found = getattr(_gen_ai, constant, None)
    return found if found == value else value


# -- GenAI semantic conventions ----------------------------------------------------------------

GEN_AI_OPERATION_NAME: Final = _semconv("GEN_AI_OPERATION_NAME", "gen_ai.operation.name")
GEN_AI_AGENT_NAME: Final = _semconv("GEN_AI_AGENT_NAME", "gen_ai.agent.name")
GEN_AI_AGENT_ID: Final = _semconv("GEN_AI_AGENT_ID", "gen_ai.agent.id")
GEN_AI_CONVERSATION_ID: Final = _semconv("GEN_AI_CONVERSATION_ID", "gen_ai.conversation.id")
GEN_AI_TOOL_NAME: Final = _semconv("GEN_AI_TOOL_NAME", "gen_ai.tool.name")
GEN_AI_TOOL_CALL_ID: Final = _semconv("GEN_AI_TOOL_CALL_ID", "gen_ai.tool.call.id")
GEN_AI_TOOL_CALL_ARGUMENTS: Final = _semconv("GEN_AI_TOOL_CALL_ARGUMENTS", "gen_ai.tool.call.arguments")
GEN_AI_TOOL_CALL_RESULT: Final = _semconv("GEN_AI_TOOL_CALL_RESULT", "gen_ai.tool.call.result")
GEN_AI_INPUT_MESSAGES: Final = _semconv("GEN_AI_INPUT_MESSAGES", "gen_ai.input.messages")
GEN_AI_OUTPUT_MESSAGES: Final = _semconv("GEN_AI_OUTPUT_MESSAGES", "gen_ai.output.messages")
GEN_AI_PROMPT: Final = _semconv("GEN_AI_PROMPT", "gen_ai.prompt")  # deprecated; read, never written
GEN_AI_COMPLETION: Final = _semconv("GEN_AI_COMPLETION", "gen_ai.completion")  # likewise
USER_ID: Final = "user.id"

# ``gen_ai.operation.name`` values (``GenAiOperationNameValues``); a span's name starts with its value.
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_EXECUTE_TOOL: Final = "execute_tool"
OP_CHAT: Final = "chat"

# -- execlave's own ----------------------------------------------------------------------------

# Spans that are no GenAI operation carry ``execlave.operation`` instead of ``gen_ai.operation.name``:
# the per-call check of a tool call a model requested, and an ``enforce_policy`` call.
EXECLAVE_OPERATION: Final = "execlave.operation"
OP_CHECK_TOOL: Final = "check_tool"
OP_ENFORCE_POLICY: Final = "enforce_policy"

ROUND_KIND: Final = "execlave.round.kind"  # "summary" or "speaker_selection" (classic AutoGen)
ROUND_TOOL_CALLS: Final = "execlave.round.tool_calls"  # requested calls checked in the round
ROUND_TOOL_SPANS_OMITTED: Final = "execlave.round.tool_spans_omitted"  # allowed ones past the span budget
TOOL_PHASE: Final = "execlave.tool.phase"  # "requested" on a check_tool span
TOOL_HANDOFF: Final = "execlave.tool.handoff"
STREAM_CLOSED_EARLY: Final = "execlave.stream.closed_early"

POLICY_DECISION: Final = "execlave.policy.decision"  # "allow" / "warn" / "block"
POLICY_VIOLATION_COUNT: Final = "execlave.policy.violation_count"
POLICY_IDS: Final = "execlave.policy.ids"
POLICY_SET_VERSION: Final = "execlave.policy.set_version"
AGENT_PAUSED: Final = "execlave.agent.paused"
ENFORCEMENT_BYPASSED: Final = "execlave.enforcement.bypassed"
ENFORCEMENT_UNAVAILABLE: Final = "execlave.enforcement.unavailable"
ENFORCEMENT_ENABLED: Final = "execlave.enforcement.enabled"  # false on a trace-only agent's spans

# The conversation root span (one trace per chat, team run or ``conversation()`` block).
CONVERSATION_SPAN: Final = "execlave.conversation"
CONVERSATION_KIND: Final = "execlave.conversation.kind"
CONVERSATION_RECIPIENT: Final = "execlave.conversation.recipient"
CONVERSATION_HALTED: Final = "execlave.conversation.halted"

# Events.
EVENT_VIOLATION: Final = "execlave.policy.violation"
EVENT_BYPASS: Final = "execlave.enforcement.bypass"
BYPASS_REASON: Final = "execlave.bypass.reason"

# One violation event's attributes.
POLICY_ID: Final = "execlave.policy.id"
POLICY_NAME: Final = "execlave.policy.name"
POLICY_TYPE: Final = "execlave.policy.type"
POLICY_ENFORCEMENT_MODE: Final = "execlave.policy.enforcement_mode"
VIOLATION_SEVERITY: Final = "execlave.violation.severity"
VIOLATION_MESSAGE: Final = "execlave.violation.message"
VIOLATION_TARGET: Final = "execlave.violation.target"
VIOLATION_TOOL_NAME: Final = "execlave.violation.tool_name"
VIOLATION_EXCERPT: Final = "execlave.violation.excerpt"


# Metric instruments (and their attributes beyond the span keys above).
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"  # GenAI semantic conventions
METRIC_DECISIONS: Final = "execlave.policy.decisions"
METRIC_VIOLATIONS: Final = "execlave.policy.violations"
METRIC_TOOLS_BLOCKED: Final = "execlave.tool.blocked"
METRIC_BYPASSES: Final = "execlave.enforcement.bypasses"
METRIC_SPANS_DROPPED: Final = "execlave.spans.dropped"
METRIC_SPANS_EXPORTED: Final = "execlave.spans.exported"
DROP_REASON: Final = "execlave.drop.reason"


def span_name(operation: str, target: str) -> str:
    """``"{operation} {target}"``, as the GenAI conventions name spans (``invoke_agent ops``)."""
    return f"{operation} {target}"
