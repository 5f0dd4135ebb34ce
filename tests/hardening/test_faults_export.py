"""Drop accounting when shutdown gives up on a batch the exporter still holds (hung or retrying):
the batch is counted as dropped when shutdown returns, and never counted twice."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from execlave.telemetry import BoundedBatchSpanProcessor


class HeldExporter(SpanExporter):
    """Holds every export until released; reports ``result`` then."""

    def __init__(self, result: SpanExportResult) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.result = result

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(30)
        return self.result

    def shutdown(self) -> None:
        return None


def test_in_flight_batch_counted_once_when_shutdown_gives_up() -> None:
    for result in (SpanExportResult.FAILURE, SpanExportResult.SUCCESS):
        exporter = HeldExporter(result)
        processor = BoundedBatchSpanProcessor(exporter, schedule_delay=0.01)
        provider = TracerProvider()
        provider.add_span_processor(processor)
        tracer = provider.get_tracer("execlave")
        for i in range(3):
            tracer.start_span(f"s{i}").end()
        assert exporter.entered.wait(10)
        assert processor.shutdown(0.1) is False
        assert processor.dropped_export_failed == 3  # exact when shutdown returns
        assert processor.exported == 0
        exporter.release.set()  # the exporter finally answers: nothing is counted again
        processor._worker.join(10)
        assert not processor._worker.is_alive()
        assert (processor.dropped_export_failed, processor.exported) == (3, 0)
