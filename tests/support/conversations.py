"""Assertions about conversation traces, for SDK ``ReadableSpan``s and OTLP-received spans alike."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

ROOT = "execlave.conversation"


def _ids(span: Any) -> tuple[Any, Any, Any]:
    if hasattr(span, "context") and span.context is not None and not hasattr(span, "trace_id"):
        parent = span.parent.span_id if span.parent is not None else None
        return span.context.trace_id, span.context.span_id, parent
    return span.trace_id, span.span_id, span.parent_span_id or None


def by_trace(spans: list[Any]) -> dict[Any, list[Any]]:
    traces: dict[Any, list[Any]] = defaultdict(list)
    for span in spans:
        traces[_ids(span)[0]].append(span)
    return dict(traces)


def assert_one_conversation(spans: list[Any], *, parent: Any = None) -> Any:
    """All ``spans`` form one trace under one ``execlave.conversation`` root (itself a child of
    ``parent``'s span id, or a root); every span carries the root's ``gen_ai.conversation.id``,
    and every span's parent is in the trace. Returns the root."""
    assert spans, "no spans"
    traces = by_trace(spans)
    assert len(traces) == 1, f"{len(traces)} traces: {[sorted(s.name for s in t) for t in traces.values()]}"
    roots = [s for s in spans if s.name == ROOT]
    assert len(roots) == 1, [s.name for s in spans]
    (root,) = roots
    assert _ids(root)[2] == parent
    conversation_id = root.attributes["gen_ai.conversation.id"]
    assert conversation_id
    known = {_ids(s)[1] for s in spans}
    for span in spans:
        assert span.attributes.get("gen_ai.conversation.id") == conversation_id, span.name
        if span is not root:
            assert _ids(span)[2] in known, f"{span.name} is not beneath the conversation"
    return root
