"""Span processors execlave installs: a bounded batch exporter and a console span tree.

The stock ``BatchSpanProcessor.force_flush`` can block far longer than its timeout when the
endpoint is black-holed; :class:`BoundedBatchSpanProcessor` never does: flush and shutdown
wait on a condition with a deadline while a daemon thread does the (itself time-bounded) export.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from . import names
from .bounds import escape_controls

SCOPE_NAME = "execlave"
logger = logging.getLogger("execlave")


def is_execlave_span(span: ReadableSpan) -> bool:
    scope = span.instrumentation_scope
    return scope is not None and scope.name == SCOPE_NAME


_SPAN_OVERHEAD = 96  # ids, times, kind, flags and field tags of one encoded span
_FIELD_OVERHEAD = 8  # tags and length prefixes of one attribute or event


def _value_size(value: object) -> int:
    if isinstance(value, str):
        return len(value) if value.isascii() else 4 * len(value)
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, (list, tuple)):
        return sum(_value_size(v) + 2 for v in value)
    return 10  # bool, int, float


def _attributes_size(attributes: object) -> int:
    if not attributes:
        return 0
    items = attributes.items() if hasattr(attributes, "items") else ()
    return sum(len(k) + _value_size(v) + _FIELD_OVERHEAD for k, v in items)


def span_size(span: ReadableSpan) -> int:
    """An upper estimate of the span's OTLP protobuf size in bytes (without resource and scope,
    which are sent once per request)."""
    size = _SPAN_OVERHEAD + _value_size(span.name) + _attributes_size(span.attributes)
    for event in span.events:
        size += _FIELD_OVERHEAD + 12 + _value_size(event.name) + _attributes_size(event.attributes)
    for link in span.links:
        size += _FIELD_OVERHEAD + 32 + _attributes_size(link.attributes)
    description = span.status.description if span.status is not None else None
    return size + _value_size(description or "")


def is_decision_span(span: ReadableSpan) -> bool:
    """A span that carries a decision worth keeping over content: a block or warning, a
    violation, an enforcement bypass or an error."""
    attrs = span.attributes or {}
    if attrs.get(names.POLICY_DECISION) in ("block", "warn"):
        return True
    if attrs.get(names.ENFORCEMENT_BYPASSED) or attrs.get(names.ENFORCEMENT_UNAVAILABLE):
        return True
    if span.status is not None and span.status.status_code == StatusCode.ERROR:
        return True
    return any(e.name == names.EVENT_VIOLATION for e in span.events)


class BoundedBatchSpanProcessor(SpanProcessor):
    """Batches finished spans into a bounded queue exported by a daemon thread.

    ``on_end`` never blocks (a full queue drops the span and counts it); ``force_flush`` and
    ``shutdown`` return within their timeout whatever the exporter does.

    The queue is bounded by span count and by estimated encoded bytes; so is each export
    request. Decision spans (:func:`is_decision_span`) have precedence: a full queue evicts
    other spans to admit one, and they are exported first.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        name: str = "export",
        max_queue_size: int = 2048,
        max_export_batch_size: int = 512,
        schedule_delay: float = 1.0,
        default_timeout: float = 5.0,
        span_filter: Callable[[ReadableSpan], bool] | None = None,
        max_queue_bytes: int = 16 * 1024 * 1024,
        max_export_batch_bytes: int = 1024 * 1024,
    ) -> None:
        if min(max_queue_size, max_export_batch_size, max_queue_bytes, max_export_batch_bytes) < 1:
            raise ValueError("queue and batch bounds (spans and bytes) must be >= 1")
        self._exporter = exporter
        self._name = name
        self._max_queue = max_queue_size
        self._batch = min(max_export_batch_size, max_queue_size)
        self._delay = schedule_delay
        self._default_timeout = default_timeout
        self._filter = span_filter
        self._max_bytes = max_queue_bytes
        self._batch_bytes = max_export_batch_bytes
        # (span, estimated size); decision spans in their own queue, exported first.
        self._priority: collections.deque[tuple[ReadableSpan, int]] = collections.deque()
        self._queue: collections.deque[tuple[ReadableSpan, int]] = collections.deque()
        self.queued_bytes = 0
        self._cond = threading.Condition()
        self._enqueued = 0  # spans accepted into the queue, ever
        self._settled = 0  # accepted spans whose export finished (either way)
        self._in_flight = 0  # spans of the batch the exporter holds right now
        self._batch_seq = 0  # id of that batch
        self._abandoned = 0  # id of a batch shutdown gave up on (already counted as dropped)
        self._stopping = False
        self._closed = False
        self.exported = 0
        self.dropped_queue_full = 0
        self.dropped_export_failed = 0
        self.dropped_after_shutdown = 0
        self._logged_drop = False
        self._worker = threading.Thread(target=self._run, name=f"execlave-{name}", daemon=True)
        self._worker.start()

    # -- SpanProcessor -------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if self._filter is not None and not self._filter(span):
            return
        if span.context is None or not span.context.trace_flags.sampled:
            return
        try:
            size = span_size(span)
            decision = is_decision_span(span)
        except Exception:  # a span this code cannot read is not worth breaking the app for
            logger.debug("execlave: could not size a span", exc_info=True)
            size, decision = self._batch_bytes, False
        with self._cond:
            if self._stopping:
                self.dropped_after_shutdown += 1
                return
            if decision:
                # Make room by evicting other spans, oldest first.
                while self._queue and not self._fits(size):
                    _, evicted = self._queue.popleft()
                    self.queued_bytes -= evicted
                    self._settled += 1  # counted as enqueued earlier: settled as dropped
                    self.dropped_queue_full += 1
                    self._log_drop_once("queue full")
                admit = self._fits(size) or not self._priority
            else:
                admit = self._fits(size)
            if not admit:
                self.dropped_queue_full += 1
                self._log_drop_once("queue full")
                return
            (self._priority if decision else self._queue).append((span, size))
            self.queued_bytes += size
            self._enqueued += 1
            if self._queued_count() >= self._batch or self.queued_bytes >= self._batch_bytes:
                self._cond.notify_all()

    def _queued_count(self) -> int:
        return len(self._priority) + len(self._queue)

    def _fits(self, size: int) -> bool:
        return self._queued_count() < self._max_queue and self.queued_bytes + size <= self._max_bytes

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        timeout = self._default_timeout if timeout_millis is None else timeout_millis / 1000.0
        return self.flush(timeout)

    def flush(self, timeout: float) -> bool:
        """Wait until every span queued before the call has been handed to the exporter and the
        export finished. ``False`` on timeout or if an export failed meanwhile."""
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._cond:
            target = self._enqueued
            failed_before = self.dropped_export_failed
            self._cond.notify_all()
            while self._settled < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._worker.is_alive():
                    return False
                self._cond.wait(remaining)
            return self.dropped_export_failed == failed_before

    def shutdown(self, timeout: float | None = None) -> bool:  # type: ignore[override]
        """Flush within ``timeout`` then stop; spans still queued are counted as export failures."""
        if timeout is None:
            timeout = self._default_timeout
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._cond:
            if self._closed:
                return True
            self._closed = True
        ok = self.flush(timeout)
        with self._cond:
            self._stopping = True
            leftover = self._queued_count()
            self._queue.clear()
            self._priority.clear()
            self.queued_bytes = 0
            self.dropped_export_failed += leftover
            self._settled += leftover
            self._cond.notify_all()
        # The exporter's own shutdown may block (e.g. gRPC waits for an in-flight export): bound it.
        closer = threading.Thread(
            target=self._shutdown_exporter, name=f"execlave-{self._name}-close", daemon=True
        )
        closer.start()
        closer.join(max(deadline - time.monotonic(), 0.0))
        with self._cond:
            # A batch the exporter still holds (hung or retrying) is lost to us: count it now, so
            # stats() is exact when shutdown returns; the worker will not count it again.
            abandoned = self._in_flight
            if abandoned:
                self.dropped_export_failed += abandoned
                self._settled += abandoned
                self._abandoned = self._batch_seq
                self._in_flight = 0
                self._cond.notify_all()
        return ok and leftover == 0 and abandoned == 0

    # -- internals -----------------------------------------------------------------------

    def _shutdown_exporter(self) -> None:
        try:
            self._exporter.shutdown()
        except Exception:  # telemetry faults never reach the app
            logger.debug("execlave: exporter %s failed to shut down", self._name, exc_info=True)

    def _log_drop_once(self, why: str) -> None:
        if not self._logged_drop:
            self._logged_drop = True
            logger.warning(
                "execlave: dropping spans (%s) on the %s exporter; further drops are counted in stats()",
                why,
                self._name,
            )

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._queued_count() and not self._stopping:
                    self._cond.wait(self._delay)
                if self._stopping and not self._queued_count():
                    return
                if not self._queued_count():
                    continue
                batch = self._take_batch()
                n = len(batch)
                self._batch_seq += 1
                seq = self._batch_seq
                self._in_flight = n
            ok = self._export(batch)
            with self._cond:
                if seq == self._abandoned:  # shutdown already counted this batch as dropped
                    continue
                self._in_flight = 0
                if ok:
                    self.exported += len(batch)
                else:
                    self.dropped_export_failed += len(batch)
                    if not self._stopping:  # after shutdown the caller already got False
                        self._log_drop_once("export failed")
                self._settled += len(batch)
                self._cond.notify_all()

    def _take_batch(self) -> list[ReadableSpan]:
        """Up to the batch's span and byte bounds (at least one span), decision spans first."""
        batch: list[ReadableSpan] = []
        total = 0
        for queue in (self._priority, self._queue):
            while queue and len(batch) < self._batch:
                span, size = queue[0]
                if batch and total + size > self._batch_bytes:
                    return batch
                queue.popleft()
                self.queued_bytes -= size
                total += size
                batch.append(span)
        return batch

    def _export(self, batch: Sequence[ReadableSpan]) -> bool:
        try:
            return self._exporter.export(batch) == SpanExportResult.SUCCESS
        except Exception:
            logger.debug("execlave: %s export raised", self._name, exc_info=True)
            return False


class ConsoleTreeProcessor(SpanProcessor):
    """Prints each finished execlave trace as an indented tree: name, duration, decision, violations."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._open: dict[int, set[int]] = {}
        self._done: dict[int, list[ReadableSpan]] = {}

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if not is_execlave_span(span) or span.context is None:
            return
        with self._lock:
            self._open.setdefault(span.context.trace_id, set()).add(span.context.span_id)

    def on_end(self, span: ReadableSpan) -> None:
        if not is_execlave_span(span) or span.context is None:
            return
        trace_id = span.context.trace_id
        with self._lock:
            self._done.setdefault(trace_id, []).append(span)
            still_open = self._open.get(trace_id, set())
            still_open.discard(span.context.span_id)
            if still_open:
                return
            self._open.pop(trace_id, None)
            spans = self._done.pop(trace_id)
        try:
            out = self._out or sys.stdout
            out.write(render_tree(spans))
            out.flush()
        except Exception:
            logger.debug("execlave: console output failed", exc_info=True)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _printable(value: object) -> str:
    """Terminal-safe text: control characters escaped, at most 1 KiB per field."""
    text = value if isinstance(value, str) else str(value)
    return escape_controls(text[:1024])


def render_tree(spans: Sequence[ReadableSpan]) -> str:
    ids = {s.context.span_id for s in spans if s.context is not None}
    children: dict[int | None, list[ReadableSpan]] = {}
    for s in spans:
        parent = s.parent.span_id if s.parent is not None and s.parent.span_id in ids else None
        children.setdefault(parent, []).append(s)
    for group in children.values():
        group.sort(key=lambda s: s.start_time or 0)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for s in children.get(parent, []):
            attrs = s.attributes or {}
            ms = ((s.end_time or 0) - (s.start_time or 0)) / 1e6
            line = f"{'  ' * depth}{_printable(s.name)}  {ms:.1f} ms"
            decision = attrs.get(names.POLICY_DECISION)
            if decision is not None:
                line += f"  decision={_printable(decision)}"
            if s.status.status_code.name == "ERROR":
                line += "  [ERROR]"
            lines.append(line)
            for ev in s.events:
                if ev.name == names.EVENT_VIOLATION:
                    a = ev.attributes or {}
                    mode = a.get(names.POLICY_ENFORCEMENT_MODE)
                    message = a.get(names.VIOLATION_MESSAGE, "")
                    policy = _printable(a.get(names.POLICY_ID))
                    indent = "  " * (depth + 1)
                    lines.append(f"{indent}! {policy} ({_printable(mode)}): {_printable(message)}")
            if s.context is not None:
                walk(s.context.span_id, depth + 1)

    walk(None, 0)
    return "\n".join(lines) + "\n"
