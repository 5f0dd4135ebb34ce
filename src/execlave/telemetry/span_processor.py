"""A SpanProcessor that governs tool spans created by other instrumentations.

Add it to your own SDK ``TracerProvider`` to evaluate tool policies on GenAI ``execute_tool``
spans that execlave did not create (autogen-core's, AG2's, ...).

Limits (these follow from how the OpenTelemetry SDK calls processors):

- Only spans the SDK records reach ``on_start``: a sampled-out span, ``OTEL_SDK_DISABLED=true``
  or a no-op provider means this processor never sees the span and nothing is checked. For
  enforcement that cannot be switched off, use the execlave adapters (governed spans).
- It sees only the attributes given at span start (``gen_ai.tool.name`` /
  ``gen_ai.operation.name`` or a span name ``execute_tool {name}``); attributes set later are
  not checked.
- With ``raise_on_block=True`` the ``PolicyBlockedError`` propagates out of ``start_span`` /
  ``start_as_current_span`` (measured on opentelemetry-sdk 1.45; upstream considers this
  propagation a bug, and a test pins it). Before raising it ends the span with ERROR status so
  the blocked span is still exported. Processors registered *after* this one never get
  ``on_start`` for that span, and the instrumentation's code after ``start_span`` does not run.
- With ``raise_on_block=False`` (default) it only records the decision on the span.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import Status, StatusCode

from ..errors import AgentPausedError, EnforcementUnavailableError, PolicyBlockedError
from ..policy.types import CheckRequest, Decision, ToolCall
from . import names
from .bounds import bound_name, bound_violation, exception_attributes, status_text
from .governed import record_decision, record_events
from .processors import is_execlave_span

logger = logging.getLogger("execlave")
_PREFIX = names.span_name(names.OP_EXECUTE_TOOL, "")


def tool_name_of(name: str, attributes: object) -> str | None:
    """The tool a span executes, or None if it is not a tool span."""
    attrs = attributes if hasattr(attributes, "get") else {}
    tool = attrs.get(names.GEN_AI_TOOL_NAME)
    if isinstance(tool, str) and tool:
        return tool
    if attrs.get(names.GEN_AI_OPERATION_NAME) == names.OP_EXECUTE_TOOL or name.startswith(_PREFIX):
        parsed = name[len(_PREFIX) :].strip() if name.startswith(_PREFIX) else ""
        return parsed or None
    return None


class GovernanceSpanProcessor(SpanProcessor):
    """Evaluate tool policies at ``on_start`` of other instrumentations' tool spans.

    Args:
        check: the decision function (``Execlave.decide``), called with a ``CheckRequest``
            holding the agent and one ``ToolCall``.
        raise_on_block: raise ``PolicyBlockedError`` from ``on_start`` on a block (after ending
            the span with ERROR status). Also raises ``AgentPausedError`` and
            ``EnforcementUnavailableError``. Off by default: decisions are only recorded.
        agent_id_attribute: span attribute holding the agent id.
        default_agent_id: used when the span has no agent id.

    See the module docstring for the limits of governing from a span processor.
    """

    def __init__(
        self,
        check: Callable[[CheckRequest], Decision],
        *,
        raise_on_block: bool = False,
        agent_id_attribute: str = names.GEN_AI_AGENT_ID,
        default_agent_id: str = "unknown-agent",
    ) -> None:
        self._check = check
        self.raise_on_block = raise_on_block
        self._agent_attr = agent_id_attribute
        self._default_agent = default_agent_id

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if is_execlave_span(span):
            return  # execlave's own spans are governed where they are created
        attrs = span.attributes or {}
        tool = tool_name_of(span.name, attrs)
        if tool is None:
            return
        agent = attrs.get(self._agent_attr)
        agent_id = agent if isinstance(agent, str) and agent else self._default_agent
        request = CheckRequest(agent_id=agent_id, tool_calls=(ToolCall(tool),))
        try:
            decision = self._check(request)
            if not isinstance(decision, Decision):
                raise TypeError(f"check returned {type(decision).__name__}, not a Decision")
        except (AgentPausedError, EnforcementUnavailableError) as exc:
            self._stop(span, exc)
            return
        except Exception as exc:
            shown = bound_name(tool)
            error = EnforcementUnavailableError(f"execlave could not evaluate tool {shown!r}; failing closed")
            error.__cause__ = exc
            logger.warning("execlave: governance check failed for tool %r", shown, exc_info=True)
            self._stop(span, error)
            return
        record_decision(span, decision)
        record_events(span, decision, with_excerpt=False)
        if decision.blocked:
            self._stop(span, PolicyBlockedError([bound_violation(v) for v in decision.blocking_violations]))

    def _stop(self, span: Span, error: Exception) -> None:
        span.set_attribute(names.POLICY_DECISION, "block")
        span.add_event("exception", exception_attributes(error))
        if not self.raise_on_block:
            return
        span.set_status(Status(StatusCode.ERROR, status_text(error)))
        span.end()
        raise error

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
