"""Reading traces as Jaeger's query API returns them (``/api/traces``: spans with ``operationName``,
``references``, ``tags``, ``logs``; processes with ``serviceName``), as a span tree, as text and as
an HTML page for the screenshot."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any


def _kv(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {item["key"]: item.get("value") for item in items or []}


@dataclass
class Span:
    trace_id: str
    span_id: str
    name: str
    parent_id: str | None
    start_us: int
    duration_us: int
    service: str
    tags: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    children: list[Span] = field(default_factory=list)

    @property
    def error(self) -> bool:
        return self.tags.get("error") is True or self.tags.get("otel.status_code") == "ERROR"

    @property
    def decision(self) -> str | None:
        value = self.tags.get("execlave.policy.decision")
        return str(value) if value is not None else None


def spans_of(trace: dict[str, Any]) -> list[Span]:
    processes = trace.get("processes") or {}
    spans = []
    for raw in trace.get("spans") or []:
        parent = next(
            (r["spanID"] for r in raw.get("references") or [] if r.get("refType") == "CHILD_OF"), None
        )
        events = []
        for log in raw.get("logs") or []:
            fields = _kv(log.get("fields"))
            events.append((str(fields.pop("event", "")), fields))
        spans.append(
            Span(
                trace_id=raw["traceID"],
                span_id=raw["spanID"],
                name=raw["operationName"],
                parent_id=parent,
                start_us=int(raw["startTime"]),
                duration_us=int(raw["duration"]),
                service=processes.get(raw.get("processID"), {}).get("serviceName", ""),
                tags=_kv(raw.get("tags")),
                events=events,
            )
        )
    return spans


def roots_of(trace: dict[str, Any]) -> list[Span]:
    """The trace's span tree: its root spans, each with ``children`` filled in, by start time."""
    spans = spans_of(trace)
    by_id = {s.span_id: s for s in spans}
    roots = []
    for span in sorted(spans, key=lambda s: s.start_us):
        parent = by_id.get(span.parent_id) if span.parent_id else None
        (parent.children if parent else roots).append(span)
    return roots


def _walk(span: Span, depth: int = 0) -> list[tuple[int, Span]]:
    rows = [(depth, span)]
    for child in span.children:
        rows.extend(_walk(child, depth + 1))
    return rows


def as_text(traces: list[dict[str, Any]]) -> str:
    """One block per trace, in start order: the tree with decision, status and events."""
    blocks = []
    for roots in sorted((roots_of(t) for t in traces), key=lambda r: r[0].start_us if r else 0):
        lines = []
        for root in roots:
            for depth, span in _walk(root):
                flags = [f"decision={span.decision}"] if span.decision else []
                flags += ["[ERROR]"] if span.error else []
                lines.append(f"{'  ' * depth}{span.name}  {' '.join(flags)}".rstrip())
                for name, attrs in span.events:
                    lines.append(
                        f"{'  ' * (depth + 1)}! {name} {attrs.get('execlave.policy.id', '')}".rstrip()
                    )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


_EVENT_KEYS = (
    "execlave.policy.id",
    "execlave.policy.enforcement_mode",
    "execlave.violation.target",
    "execlave.violation.tool_name",
    "execlave.violation.message",
    "exception.type",
)
_STYLE = """
body { font: 14px/1.35 system-ui, sans-serif; margin: 0; background: #fff; color: #1a1a1a; }
header { background: #1f2b38; color: #fff; padding: 12px 20px; }
header b { font-size: 17px; } header span { opacity: .75; margin-left: 12px; }
section { margin: 14px 20px; border: 1px solid #d8dde3; border-radius: 4px; }
section h2 { font-size: 13px; font-weight: 600; margin: 0; padding: 6px 10px; background: #f3f5f7;
  border-bottom: 1px solid #d8dde3; }
.row { display: grid; grid-template-columns: 430px 1fr 80px; align-items: center; padding: 2px 10px; }
.row:nth-child(even) { background: #fafbfc; }
.name { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.bar { position: relative; height: 12px; }
.bar i { position: absolute; top: 0; height: 12px; min-width: 2px; background: #11939a; border-radius: 2px; }
.err .bar i { background: #d9363e; }
.dur { text-align: right; color: #555; font-variant-numeric: tabular-nums; }
.tag { font-size: 11px; padding: 0 5px; border-radius: 3px; margin-left: 6px; background: #e7eef6; }
.tag.block, .tag.error { background: #fbe3e4; color: #a1151c; }
.tag.allow { background: #e3f6e8; color: #17692f; }
.event { grid-column: 1 / 4; color: #a1151c; font-size: 12px; }
"""


def as_html(traces: list[dict[str, Any]], title: str, subtitle: str) -> str:
    """A timeline page of the traces (span tree, bars, decisions, ERROR status, violation events)."""
    sections = []
    ordered = sorted((roots_of(t) for t in traces), key=lambda r: r[0].start_us if r else 0)
    for number, roots in enumerate(ordered, 1):
        rows = [row for root in roots for row in _walk(root)]
        if not rows:
            continue
        start = min(s.start_us for _, s in rows)
        end = max(s.start_us + s.duration_us for _, s in rows)
        width = max(end - start, 1)
        top = rows[0][1]
        count = f"{len(rows)} span{'s' * (len(rows) > 1)}"
        parts = [
            f"<h2>Trace {number}: {html.escape(top.name)} &middot; {count} &middot; "
            f"{html.escape(top.service)} &middot; trace id {html.escape(top.trace_id)}</h2>"
        ]
        for depth, span in rows:
            tags = ""
            if span.decision:
                tags += f'<span class="tag {html.escape(span.decision)}">{html.escape(span.decision)}</span>'
            if span.error:
                tags += '<span class="tag error">ERROR</span>'
            left = 100 * (span.start_us - start) / width
            size = 100 * span.duration_us / width
            parts.append(
                f'<div class="row{" err" if span.error else ""}">'
                f'<div class="name" style="padding-left:{depth * 18}px">{html.escape(span.name)}{tags}</div>'
                f'<div class="bar"><i style="left:{left:.2f}%;width:{size:.2f}%"></i></div>'
                f'<div class="dur">{span.duration_us / 1000:.1f} ms</div></div>'
            )
            for name, attrs in span.events:
                detail = ", ".join(f"{k.split('.', 1)[1]}={attrs[k]}" for k in _EVENT_KEYS if k in attrs)
                parts.append(
                    f'<div class="row"><div class="event" style="padding-left:{depth * 18 + 24}px">'
                    f"event {html.escape(name)}: {html.escape(detail)}</div></div>"
                )
        sections.append(f"<section>{''.join(parts)}</section>")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><header><b>{html.escape(title)}</b>"
        f"<span>{html.escape(subtitle)}</span></header>{''.join(sections)}</body></html>"
    )
