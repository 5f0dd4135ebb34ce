"""The telemetry pipeline: provider resolution, exporters, governed spans, bounded flush."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind
from opentelemetry.util.types import AttributeValue

from .._version import __version__
from ..errors import AgentPausedError, EnforcementUnavailableError, PolicyBlockedError
from ..policy.types import Decision
from . import names
from .bounds import (
    CACHED_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_NAME_CHARS,
    bound_name,
    bound_short,
    bound_span_name,
    bound_text,
    resolve_attribute_length,
)
from .config import DEFAULT_SERVICE_NAME, TelemetryConfig, resolve_capture_content
from .conversation import note_error, with_conversation_id
from .governed import GovernedSpan, record_decision, record_events, unrecorded_span
from .metric_pipeline import MeterPipeline, build_meter_pipeline
from .metrics import TIMED_OPERATIONS, Metrics
from .processors import SCOPE_NAME, BoundedBatchSpanProcessor, ConsoleTreeProcessor, is_execlave_span

logger = logging.getLogger("execlave")

_PROTOCOLS = {"http/protobuf", "grpc"}
# Attributes holding a model- or app-chosen name or id: exported masked, escaped and bounded.
_NAME_ATTRIBUTES = frozenset(
    {names.GEN_AI_TOOL_NAME, names.GEN_AI_TOOL_CALL_ID, names.GEN_AI_AGENT_NAME, names.VIOLATION_TOOL_NAME}
)


_BOUNDED_CACHE_ENTRIES = 256
_SHORT_CACHE_ENTRIES = 2048
_OPEN_SPANS_ENTRIES = 4096


class _RoundBudget:
    """Per-call spans opened under one governed span, and the calls summarised instead."""

    __slots__ = ("calls", "omitted", "spans")

    def __init__(self) -> None:
        self.calls = 0
        self.spans = 0
        self.omitted = 0


class Telemetry:
    """Execlave's tracing: one per client. See ``docs/telemetry.md``."""

    def __init__(self, config: TelemetryConfig, *, masker: Callable[[str], str]) -> None:
        self._config = config
        self._masker = masker
        # A SecretRedactingMasker (the client passes one when it has a key) also says whether a
        # text holds the secret, for attribute values that are not otherwise masked.
        self._reveals: Callable[[str], bool] | None = getattr(masker, "reveals", None)
        self.capture_content: bool = resolve_capture_content(config.capture_content)
        self.max_attribute_length: int = resolve_attribute_length(config.max_attribute_length)
        if config.max_tool_spans_per_round < 1:
            raise ValueError("max_tool_spans_per_round must be >= 1")
        self.max_tool_spans_per_round: int = config.max_tool_spans_per_round
        self._processors: list[BoundedBatchSpanProcessor] = []
        # Per-call span budgets, by the governed span they are counted under (weak: a span
        # that is never ended does not leak its budget).
        self._budgets: weakref.WeakKeyDictionary[Any, _RoundBudget] = weakref.WeakKeyDictionary()
        self._budget_lock = threading.Lock()
        # Bounded name and attributes of spans whose attributes are a read-only mapping (the same
        # agent's rounds): bounding is deterministic, so it is done once per mapping and name.
        # Governed spans open now, by id(span): their per-call children find their budget here.
        self._open_spans: dict[int, _GovernedSpanContext] = {}
        self._bounded_cache: dict[int, tuple[Any, str, str, dict[str, AttributeValue]]] = {}
        # Short texts as bounded with this client's masker (bounding is deterministic, the masker
        # fixed): span names and name attributes as exported, and attribute values already found
        # to need no bounding (printable, short, not the secret). Plain dicts: one lookup each.
        self._bounded_span_names: dict[str, str] = {}
        self._bounded_names: dict[str, str] = {}
        self._clean_values: set[str] = set()
        self._shutdown_done = False
        self._lock = threading.Lock()

        provider: Any = config.tracer_provider
        self.owns_provider = False
        if provider is None:
            provider = trace.get_tracer_provider()
            if isinstance(provider, trace.ProxyTracerProvider):
                provider = self._own_provider()
                self.owns_provider = True
        self.tracer_provider: Any = provider
        self.tracer: trace.Tracer = provider.get_tracer(SCOPE_NAME, __version__)
        # The API's no-op tracer (a no-op or non-SDK provider, OTEL_SDK_DISABLED) starts no span:
        # governed spans then skip naming, bounding and context entirely (checks run the same).
        self.never_records: bool = type(self.tracer) is trace.NoOpTracer
        meter_provider = config.meter_provider
        self._meters: MeterPipeline | None = None
        if meter_provider is None and self.owns_provider:  # metrics go with execlave's traces
            self._meters = build_meter_pipeline(
                endpoint=config.otlp_endpoint,
                protocol=config.otlp_protocol,
                headers=config.otlp_headers,
                export_timeout=config.export_timeout,
                resource=getattr(provider, "resource", None),
            )
            meter_provider = None if self._meters is None else self._meters.provider
        self.metrics = Metrics(meter_provider, self.stats)

        can_attach = callable(getattr(provider, "add_span_processor", None))
        if config.execlave_exporter is not None:
            if can_attach:
                self._attach(provider, "execlave", config.execlave_exporter)
            else:
                logger.warning(
                    "execlave: the tracer provider %s is not an SDK provider; spans are not exported to "
                    "Execlave (enforcement is unaffected)",
                    type(provider).__name__,
                )
                try:
                    config.execlave_exporter.shutdown()  # unused: release its connection pool
                except Exception:
                    logger.debug("execlave: could not close the unused Execlave exporter", exc_info=True)
        if self.owns_provider:
            collector = self._collector_exporter()
            if collector is not None:
                self._attach(provider, "collector", collector)
        if config.console and can_attach:
            provider.add_span_processor(ConsoleTreeProcessor())

        if self._processors or self._meters is not None:
            ref = weakref.ref(self)
            timeout = config.shutdown_timeout

            def _at_exit() -> None:
                tel = ref()
                if tel is not None:
                    tel.shutdown(timeout)

            atexit.register(_at_exit)

    # -- setup ---------------------------------------------------------------------------

    def _own_provider(self) -> Any:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import SpanLimits, TracerProvider

        service = self._config.service_name or os.environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME
        resource = Resource.create({"deployment.environment": self._config.environment}).merge(
            Resource({"service.name": service})
        )
        # Never installed globally; our own atexit hook shuts our processors down with a bound.
        # OTel's own span limits cap every attribute value, span and event attributes alike.
        length = self.max_attribute_length
        try:
            limits = SpanLimits(max_attribute_length=length, max_span_attribute_length=length)
        except ValueError:  # a malformed OTEL_*_LIMIT variable: the SDK's defaults, our length
            logger.warning("execlave: ignoring malformed OTEL_*_LIMIT variables; using default span limits")
            counts = dict.fromkeys(
                ("max_span_attributes", "max_event_attributes", "max_link_attributes", "max_attributes"), 128
            )
            limits = SpanLimits(
                max_events=128,
                max_links=128,
                max_attribute_length=length,
                max_span_attribute_length=length,
                **counts,
            )
        return TracerProvider(resource=resource, shutdown_on_exit=False, span_limits=limits)

    def _attach(self, provider: Any, name: str, exporter: Any) -> None:
        c = self._config
        processor = BoundedBatchSpanProcessor(
            exporter,
            name=name,
            max_queue_size=c.max_queue_size,
            max_export_batch_size=c.max_export_batch_size,
            max_queue_bytes=c.max_queue_bytes,
            max_export_batch_bytes=c.max_export_batch_bytes,
            schedule_delay=c.schedule_delay,
            default_timeout=c.shutdown_timeout,
            span_filter=is_execlave_span,
        )
        provider.add_span_processor(processor)
        self._processors.append(processor)

    def _collector_exporter(self) -> Any:
        c = self._config
        env_endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        if not c.otlp_endpoint and not env_endpoint:
            return None
        protocol = (
            (
                c.otlp_protocol
                or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf"
            )
            .strip()
            .lower()
        )
        if protocol not in _PROTOCOLS:
            raise ValueError(f"unsupported OTLP protocol {protocol!r}; use 'http/protobuf' or 'grpc'")
        headers = dict(c.otlp_headers) if c.otlp_headers else None
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

            return GrpcExporter(endpoint=c.otlp_endpoint, headers=headers, timeout=c.export_timeout)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = None
        if c.otlp_endpoint:
            base = c.otlp_endpoint.rstrip("/")
            endpoint = base if base.endswith("/v1/traces") else f"{base}/v1/traces"
        return OTLPSpanExporter(endpoint=endpoint, headers=headers, timeout=c.export_timeout)

    # -- spans ---------------------------------------------------------------------------

    def governed_span(
        self,
        name: str,
        *,
        attributes: Mapping[str, AttributeValue] | None = None,
        check: Callable[[], Decision] | None = None,
        raise_on_block: bool = True,
        kind: SpanKind = SpanKind.INTERNAL,
        per_call: bool = False,
    ) -> _GovernedSpanContext:
        """Start ``name`` as the current span, run ``check`` at its start, record the decision,
        raise :class:`PolicyBlockedError` inside the span on a block. See the module docs.

        The name and the name attributes (``gen_ai.tool.name``, ...) are exported masked, escaped
        and bounded. ``per_call=True`` marks one span of many under a round: past
        ``max_tool_spans_per_round`` such spans under the same governed span, an allowed call
        gets no span of its own and is counted on the round span instead (the check runs all the
        same; a call that is not allowed keeps its span, up to twice the limit)."""
        if self.never_records:  # no span at all: the same check, decision, metrics and raise
            return UnrecordedSpanContext(self, attributes, check, raise_on_block)  # type: ignore[return-value]
        return _GovernedSpanContext(self, name, attributes, check, raise_on_block, kind, per_call)

    def _bounded(
        self, name: str, attributes: Mapping[str, AttributeValue] | None
    ) -> tuple[str, dict[str, AttributeValue] | None]:
        frozen = type(attributes) is MappingProxyType  # never changes (an agent's round attributes)
        if frozen:
            hit = self._bounded_cache.get(id(attributes))
            if hit is not None and hit[0] is attributes and hit[1] == name:
                return hit[2], dict(hit[3])
        span_names = self._bounded_span_names
        bounded_name = span_names.get(name)
        if bounded_name is None:
            bounded_name = bound_span_name(name, self._masker)
            if type(name) is str and len(name) <= CACHED_CHARS:
                if len(span_names) >= _SHORT_CACHE_ENTRIES:
                    span_names.clear()
                span_names[name] = bounded_name
        if not attributes:
            return bounded_name, None
        limit = self.max_attribute_length
        reveals = self._reveals
        out: dict[str, AttributeValue] = {}
        masker = self._masker
        bounded_names = self._bounded_names
        clean = self._clean_values
        for key, value in attributes.items():
            if key in _NAME_ATTRIBUTES:
                if type(value) is str and len(value) <= CACHED_CHARS:
                    bounded = bounded_names.get(value)
                    if bounded is None:
                        bounded = bound_short(value, MAX_NAME_CHARS, masker)
                        if len(bounded_names) >= _SHORT_CACHE_ENTRIES:
                            bounded_names.clear()
                        bounded_names[value] = bounded
                    out[key] = bounded
                else:
                    out[key] = bound_name(value, masker)
            elif type(value) is str and value in clean:
                out[key] = value
            elif isinstance(value, str) and (
                len(value) > limit or not value.isprintable() or (reveals is not None and reveals(value))
            ):
                out[key] = bound_text(value, min(limit, MAX_MESSAGE_CHARS), self._masker)
            else:
                out[key] = value
                if type(value) is str and len(value) <= CACHED_CHARS:
                    if len(clean) >= _SHORT_CACHE_ENTRIES:
                        clean.clear()
                    clean.add(value)
        if frozen:
            cache = self._bounded_cache
            if len(cache) >= _BOUNDED_CACHE_ENTRIES:
                cache.clear()
            cache[id(attributes)] = (attributes, name, bounded_name, out)  # holds it: the id stays its
            return bounded_name, dict(out)
        return bounded_name, out

    # -- lifecycle -----------------------------------------------------------------------

    def flush(self, timeout: float = 5.0) -> bool:
        """Export what is queued; returns within ``timeout`` (+ small margin) even if endpoints are down."""
        import time

        deadline = time.monotonic() + max(timeout, 0.0)
        metrics_done = self._meters.start_flush(timeout) if self._meters is not None else None
        ok = True
        for p in list(self._processors):
            ok = p.flush(max(deadline - time.monotonic(), 0.0)) and ok
        if metrics_done is not None:
            ok = metrics_done(deadline - time.monotonic()) and ok
        return ok

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Flush and stop exporting, bounded like :meth:`flush`. Governed spans keep enforcing."""
        import time

        with self._lock:
            if self._shutdown_done:
                return True
            self._shutdown_done = True
        deadline = time.monotonic() + max(timeout, 0.0)
        metrics_done = self._meters.start_shutdown(timeout) if self._meters is not None else None
        ok = True
        for p in list(self._processors):
            ok = p.shutdown(max(deadline - time.monotonic(), 0.0)) and ok
        if metrics_done is not None:
            ok = metrics_done(deadline - time.monotonic()) and ok
        return ok

    def stats(self) -> dict[str, int]:
        out = {
            "spans_exported": 0,
            "spans_dropped_queue_full": 0,
            "spans_dropped_export_failed": 0,
            "spans_dropped_after_shutdown": 0,
        }
        for p in self._processors:
            out["spans_exported"] += p.exported
            out["spans_dropped_queue_full"] += p.dropped_queue_full
            out["spans_dropped_export_failed"] += p.dropped_export_failed
            out["spans_dropped_after_shutdown"] += p.dropped_after_shutdown
        # The Execlave exporter's own counters (records sent / rejected / undelivered).
        exporter_stats = getattr(self._config.execlave_exporter, "stats", None)
        if callable(exporter_stats):
            try:
                out.update(exporter_stats())
            except Exception:
                logger.debug("execlave: exporter stats failed", exc_info=True)
        return out

    def __repr__(self) -> str:
        return (
            f"Telemetry(owns_provider={self.owns_provider}, exporters={[p._name for p in self._processors]}, "
            f"capture_content={self.capture_content})"
        )


class _GovernedSpanContext:
    """The context manager behind :meth:`Telemetry.governed_span` (a plain class: it runs on
    every round and tool call, so it avoids generator-based context managers)."""

    __slots__ = (
        "_args",
        "_budget",
        "_child_budget",
        "_governed",
        "_opened",
        "_parent",
        "_start",
        "_telemetry",
        "_token",
    )

    def __init__(
        self,
        telemetry: Telemetry,
        name: str,
        attributes: Mapping[str, AttributeValue] | None,
        check: Callable[[], Decision] | None,
        raise_on_block: bool,
        kind: SpanKind,
        per_call: bool = False,
    ) -> None:
        self._telemetry = telemetry
        self._args = (name, attributes, check, raise_on_block, kind)
        self._token: object = None
        self._governed: GovernedSpan | None = None
        self._parent: Any = None
        self._budget: _RoundBudget | None = None
        self._child_budget: _RoundBudget | None = None  # of the per-call spans opened under this one
        self._opened: Span | None = None  # this span while it is open and recording
        if per_call and not telemetry.never_records:
            parent = trace.get_current_span()
            if parent.is_recording():
                owner = telemetry._open_spans.get(id(parent))
                try:
                    with telemetry._budget_lock:
                        if owner is not None and owner._opened is parent:  # a governed span (a round)
                            budget = owner._child_budget
                            if budget is None:
                                budget = owner._child_budget = _RoundBudget()
                        else:  # another instrumentation's span
                            budget = telemetry._budgets.get(parent)
                            if budget is None:
                                budget = telemetry._budgets[parent] = _RoundBudget()
                    self._parent, self._budget = parent, budget
                except TypeError:  # a span type that cannot be weakly referenced: no budget
                    pass
        self._start = 0.0

    def _open_span(self) -> Span:
        name, attributes, _, _, kind = self._args
        tel = self._telemetry
        try:
            bounded_name, bounded_attributes = tel._bounded(name, attributes)
            context = otel_context.get_current()  # read once: the conversation and the parent
            span: Span = tel.tracer.start_span(
                bounded_name,
                context=context,
                kind=kind,
                attributes=with_conversation_id(bounded_attributes, tel._masker, context),
            )
        except Exception:
            # A broken tracer must not switch enforcement off: govern without a span.
            logger.warning("execlave: could not start a span; enforcing without it", exc_info=True)
            return INVALID_SPAN
        try:
            self._token = otel_context.attach(trace.set_span_in_context(span))
        except Exception:
            logger.debug("execlave: could not make a span current", exc_info=True)
        if self._opened is None:
            self._opened = span
            spans = tel._open_spans
            if len(spans) >= _OPEN_SPANS_ENTRIES:  # spans never ended (abandoned): forgotten
                spans.clear()
            spans[id(span)] = self  # found by its per-call children (their budget)
        return span

    def __enter__(self) -> GovernedSpan:
        _, attributes, check, raise_on_block, _ = self._args
        tel = self._telemetry
        budget = self._budget
        deferred = False
        if budget is not None:
            with tel._budget_lock:
                budget.calls += 1
                deferred = budget.spans >= tel.max_tool_spans_per_round
                if not deferred:
                    budget.spans += 1
        span = INVALID_SPAN if deferred or tel.never_records else self._open_span()
        governed = self._governed = GovernedSpan(
            span,
            capture_content=tel.capture_content,
            masker=tel._masker,
            max_attribute_length=tel.max_attribute_length,
            metrics=tel.metrics,
            metric_attributes=attributes,
        )
        self._start = time.monotonic()
        if check is not None:
            try:
                governed.check(check, raise_on_block=raise_on_block)
            except BaseException as exc:
                if deferred:
                    self._settle_deferred(governed, failed=True)
                self._close(exc)
                raise
        if deferred:
            self._settle_deferred(governed, failed=False)
        return governed

    def _settle_deferred(self, governed: GovernedSpan, *, failed: bool) -> None:
        """A per-call span past the round's budget: a call that is not allowed gets its span
        after all (up to twice the budget); otherwise it is summarised on the round span."""
        budget = self._budget
        assert budget is not None
        tel = self._telemetry
        try:
            notable = failed or governed.decision.outcome != "allow"
            with tel._budget_lock:
                promote = notable and budget.spans < 2 * tel.max_tool_spans_per_round
                if promote:
                    budget.spans += 1
                else:
                    budget.omitted += 1
            if promote:
                span = self._open_span()
                governed.use_span(span)
                record_decision(span, governed.decision)
                for decision in governed._decisions:
                    record_events(span, decision, with_excerpt=tel.capture_content, masker=tel._masker)
            elif notable:
                record_events(self._parent, governed.decision, with_excerpt=False, masker=tel._masker)
            self._parent.set_attributes(
                {
                    names.ROUND_TOOL_CALLS: budget.calls,
                    names.ROUND_TOOL_SPANS_OMITTED: budget.omitted,
                }
            )
        except Exception:
            logger.debug("execlave: could not record a summarised call", exc_info=True)

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self._close(exc)
        budget = self._budget
        if budget is not None and budget.omitted == 0:
            try:
                self._parent.set_attribute(names.ROUND_TOOL_CALLS, budget.calls)
            except Exception:
                logger.debug("execlave: could not count a call", exc_info=True)

    def _close(self, exc: BaseException | None) -> None:
        governed = self._governed
        if governed is None:
            return
        self._governed = None
        opened = self._opened
        if opened is not None:
            self._telemetry._open_spans.pop(id(opened), None)
            self._opened = None
        attributes = self._args[1]
        if exc is not None or (
            attributes
            and attributes.get(names.GEN_AI_OPERATION_NAME) in TIMED_OPERATIONS
            and self._telemetry.metrics.durations_live()
        ):
            _count(self._telemetry, attributes, exc, time.monotonic() - self._start)
        if exc is not None:
            note_error(exc)  # the conversation's root ends ERROR even if the framework swallows exc
            if isinstance(exc, PolicyBlockedError):
                governed._on_block_passing(exc)
            governed._fail(exc)
        if governed.span is not INVALID_SPAN:
            try:
                governed.span.end()
            except Exception:
                logger.debug("execlave: could not end span", exc_info=True)
        if self._token is not None:
            try:
                otel_context.detach(self._token)  # type: ignore[arg-type]
            except Exception:
                logger.debug("execlave: could not detach span context", exc_info=True)
            self._token = None


class UnrecordedSpanContext:
    """:meth:`Telemetry.governed_span` on a tracer that never records (the API's ``NoOpTracer``):
    no span is named, started or made current and no per-call budget is kept (nothing would
    record them), so this is :class:`_GovernedSpanContext` without that work. The check, its
    decision, the metrics and the raise are the same code (``GovernedSpan.check``, ``_count``)."""

    __slots__ = ("_attributes", "_check", "_governed", "_raise", "_start", "_telemetry")

    def __init__(
        self,
        telemetry: Telemetry,
        attributes: Mapping[str, AttributeValue] | None,
        check: Callable[[], Decision] | None,
        raise_on_block: bool,
    ) -> None:
        self._telemetry = telemetry
        self._attributes = attributes
        self._check = check
        self._raise = raise_on_block
        self._governed: GovernedSpan | None = None
        self._start = 0.0

    def __enter__(self) -> GovernedSpan:
        tel = self._telemetry
        governed = self._governed = unrecorded_span(
            tel._masker, tel.capture_content, tel.max_attribute_length, tel.metrics, self._attributes
        )
        self._start = time.monotonic()
        check = self._check
        if check is not None:
            try:
                governed.check(check, raise_on_block=self._raise)
            except BaseException as exc:
                self.__exit__(None, exc, None)
                raise
        return governed

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        governed = self._governed
        if governed is None:
            return
        self._governed = None
        attributes = self._attributes
        tel = self._telemetry
        if exc is not None or (
            attributes
            and attributes.get(names.GEN_AI_OPERATION_NAME) in TIMED_OPERATIONS
            and tel.metrics.durations_live()
        ):
            _count(tel, attributes, exc, time.monotonic() - self._start)
        if exc is not None:
            note_error(exc)  # the conversation's root ends ERROR even if the framework swallows exc
            if isinstance(exc, PolicyBlockedError):
                governed._on_block_passing(exc)


def _count(
    telemetry: Telemetry,
    attributes: Mapping[str, AttributeValue] | None,
    exc: BaseException | None,
    seconds: float,
) -> None:
    """Metrics at span end: the operation's duration, and a check that halted without a decision
    (counted once, on the span where it was raised)."""
    telemetry.metrics.operation(seconds, attributes, exc)
    if isinstance(exc, (AgentPausedError, EnforcementUnavailableError)) and not getattr(
        exc, "_execlave_counted", False
    ):
        try:
            exc._execlave_counted = True  # type: ignore[union-attr]
        except Exception:
            return
        telemetry.metrics.halted("paused" if isinstance(exc, AgentPausedError) else "error", attributes)
