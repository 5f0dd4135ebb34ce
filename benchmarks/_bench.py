"""Shared pieces of the overhead benchmarks (not a test module; not imported by the package).

- span processors: ``SimpleSpanProcessor`` + in-memory exporter, or ``BatchSpanProcessor`` with a
  do-nothing exporter that only counts what it is given (the production processor shape);
- the floor: a wrapper that emits, with the plain OTel SDK, exactly the span tree execlave
  emitted for the same round (names, kinds, attributes, events), recorded once in a probe, and
  does nothing else (no extraction, no checks) -- what any tracer of those spans must pay;
- interleaved, paired timing: blocks of rounds per configuration, order rotated every repeat,
  the first repeat discarded; "added" is the median over repeats of (config - bare) within the
  same repeat. CPU time of the whole process (``time.process_time``: the batch worker thread
  counts) is the primary figure -- on a shared 2-core machine it is far less noisy than wall time;
- ``ExecutionCounter``: instruction counts from callgrind client requests (see
  ``callgrind_rounds.py``).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import inspect
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

ROOT = Path(__file__).resolve().parents[1]
PROCESSORS = ("simple", "batch")


class CountingNullExporter(SpanExporter):
    """Drops every span; counts them so a probe can check spans were really produced."""

    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.count += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


@dataclass
class Pipeline:
    """One tracer provider with one processor; ``finished()`` counts spans ended since ``clear()``."""

    kind: str
    provider: TracerProvider = field(init=False)
    memory: InMemorySpanExporter | None = field(init=False, default=None)
    null: CountingNullExporter | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.provider = TracerProvider()
        if self.kind == "simple":
            self.memory = InMemorySpanExporter()
            self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        elif self.kind == "batch":
            self.null = CountingNullExporter()
            self.provider.add_span_processor(BatchSpanProcessor(self.null))
        else:
            raise ValueError(f"unknown processor {self.kind!r}")

    def clear(self) -> None:
        if self.memory is not None:
            self.memory.clear()
        if self.null is not None:
            self.provider.force_flush()
            self.null.count = 0

    def finished(self) -> int:
        if self.memory is not None:
            n = len(self.memory.get_finished_spans())
        else:
            assert self.null is not None
            self.provider.force_flush()
            n = self.null.count
        self.clear()
        return n

    def shutdown(self) -> None:
        self.provider.shutdown()


# -- the floor ---------------------------------------------------------------------------------


@dataclass
class SpanTemplate:
    name: str
    kind: trace.SpanKind
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    children: list[SpanTemplate]


def span_templates(spans: Sequence[ReadableSpan]) -> list[SpanTemplate]:
    """The recorded spans as trees (roots first, children in start order)."""
    ordered = sorted(spans, key=lambda s: s.start_time or 0)
    ids = {s.context.span_id for s in ordered}
    nodes = {
        s.context.span_id: SpanTemplate(
            s.name,
            s.kind,
            dict(s.attributes or {}),
            [(e.name, dict(e.attributes or {})) for e in s.events],
            [],
        )
        for s in ordered
    }
    roots: list[SpanTemplate] = []
    for s in ordered:
        parent = s.parent.span_id if s.parent is not None else None
        (nodes[parent].children if parent in ids else roots).append(nodes[s.context.span_id])
    return roots


def emit_children(tracer: trace.Tracer, templates: Sequence[SpanTemplate]) -> None:
    for t in templates:
        span = tracer.start_span(t.name, kind=t.kind, attributes=t.attributes)
        for name, attrs in t.events:
            span.add_event(name, attrs)
        if t.children:
            token = otel_context.attach(trace.set_span_in_context(span))
            try:
                emit_children(tracer, t.children)
            finally:
                otel_context.detach(token)
        span.end()


def floor_sync(tracer: trace.Tracer, root: SpanTemplate, inner: Callable[..., Any]) -> Callable[..., Any]:
    """The hand-written wrapper: the root span current around ``inner``, its children after."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with tracer.start_as_current_span(root.name, kind=root.kind, attributes=root.attributes) as span:
            for name, attrs in root.events:
                span.add_event(name, attrs)
            result = inner(*args, **kwargs)
            emit_children(tracer, root.children)
            return result

    return wrapper


def floor_async(tracer: trace.Tracer, root: SpanTemplate, inner: Callable[..., Any]) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        with tracer.start_as_current_span(root.name, kind=root.kind, attributes=root.attributes) as span:
            for name, attrs in root.events:
                span.add_event(name, attrs)
            result = await inner(*args, **kwargs)
            emit_children(tracer, root.children)
            return result

    return wrapper


def floor_agen(tracer: trace.Tracer, root: SpanTemplate, inner: Callable[..., Any]) -> Callable[..., Any]:
    """:func:`floor_sync` for an async generator (AgentChat's ``on_messages_stream``)."""

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        with tracer.start_as_current_span(root.name, kind=root.kind, attributes=root.attributes) as span:
            for name, attrs in root.events:
                span.add_event(name, attrs)
            async for item in inner(*args, **kwargs):
                yield item
            emit_children(tracer, root.children)

    return wrapper


def count_templates(templates: Sequence[SpanTemplate]) -> int:
    return sum(1 + count_templates(t.children) for t in templates)


# -- execlave knobs that may or may not exist yet --------------------------------------------------


def supports_enforce_flag(fn: Callable[..., Any]) -> bool:
    """Whether ``instrument_autogen_agent`` has ``enforce=`` (trace only)."""
    try:
        return "enforce" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


class RequestRecorder:
    """Wraps an engine's ``evaluate`` (instance attribute) to collect the requests it is given."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.requests: list[Any] = []

    def __enter__(self) -> RequestRecorder:
        original = self.engine.evaluate

        def evaluate(request: Any, *args: Any, **kwargs: Any) -> Any:
            self.requests.append(request)
            return original(request, *args, **kwargs)

        self.engine.evaluate = evaluate
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(AttributeError):
            del self.engine.evaluate


# -- timing ----------------------------------------------------------------------------------------


@dataclass
class Block:
    cpu_us: float
    wall_us: float


NO_GC = False
"""Set by ``--no-gc``: the cyclic GC is off inside timed blocks (isolates GC pressure)."""


def time_block(run: Callable[[int], None], rounds: int) -> Block:
    gc.collect()
    gc.freeze()  # objects that exist before the block are never rescanned by it
    if NO_GC:
        gc.disable()
    try:
        c0, w0 = time.process_time(), time.perf_counter()
        run(rounds)
        c1, w1 = time.process_time(), time.perf_counter()
    finally:
        gc.enable()
    return Block((c1 - c0) / rounds * 1e6, (w1 - w0) / rounds * 1e6)


def interleave(
    configs: dict[str, Callable[[int], None]],
    rounds: int,
    repeats: int,
    between: Callable[[str], None] | None = None,
    before: Callable[[str], None] | None = None,
) -> dict[str, list[Block]]:
    """Blocks of ``rounds`` per configuration, order rotated every repeat; repeat 0 is a warm-up."""
    names = list(configs)
    out: dict[str, list[Block]] = {n: [] for n in names}
    for repeat in range(repeats + 1):
        k = repeat % len(names)
        for name in names[k:] + names[:k]:
            if before is not None:
                before(name)
            try:
                block = time_block(configs[name], rounds)
            finally:
                if between is not None:
                    between(name)
            if repeat:
                out[name].append(block)
    return out


def median(blocks: list[Block], wall: bool = False) -> float:
    return statistics.median(b.wall_us if wall else b.cpu_us for b in blocks)


def added(results: dict[str, list[Block]], name: str, base: str = "bare", wall: bool = False) -> float:
    pairs = zip(results[name], results[base], strict=True)
    return statistics.median((c.wall_us - b.wall_us) if wall else (c.cpu_us - b.cpu_us) for c, b in pairs)


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b <= 0:
        return "-"
    return f"{a / b:.2f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = [" | ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("-|-".join("-" * w for w in widths))
    lines += [" | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


# -- callgrind client requests -----------------------------------------------------------------------

_SHIM = r"""
#include <valgrind/callgrind.h>
int running_on_valgrind(void) { return RUNNING_ON_VALGRIND; }
void start_instrumentation(void) { CALLGRIND_START_INSTRUMENTATION; }
void zero_stats(void) { CALLGRIND_ZERO_STATS; }
void dump_stats_at(const char *label) { CALLGRIND_DUMP_STATS_AT(label); }
"""


class ExecutionCounter:
    """ctypes access to callgrind's client requests (a 4-line C shim compiled with ``cc`` on first
    use into a temporary directory; needs valgrind's headers, which ship with valgrind)."""

    def __init__(self) -> None:
        build = Path(tempfile.gettempdir()) / f"execlave-bench-{os.getuid()}"
        build.mkdir(exist_ok=True)
        lib = build / "cgshim.so"
        if not lib.exists():
            src = build / "cgshim.c"
            src.write_text(_SHIM)
            subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
        self._lib = ctypes.CDLL(str(lib))
        self._lib.dump_stats_at.argtypes = [ctypes.c_char_p]

    @property
    def active(self) -> bool:
        return bool(self._lib.running_on_valgrind())

    def start(self) -> None:
        self._lib.start_instrumentation()

    def zero(self) -> None:
        self._lib.zero_stats()

    def dump(self, label: str) -> None:
        self._lib.dump_stats_at(label.encode())
