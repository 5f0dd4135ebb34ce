"""Bounded flush/shutdown, drop counting, non-blocking span end, bounded process exit.

The bounds asserted here are correctness bounds, not speed targets: the exporter's own timeout
is set to 30-60 s, so an implementation that waited for the exporter would miss them by far.
Speed figures live in benchmarks/flush_outage.py.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from execlave.connection.execlave_otlp import ExeclaveOtlpExporter
from execlave.connection.ingest import TraceIngestExporter
from execlave.telemetry import BoundedBatchSpanProcessor
from support.otlp import BlackHole, HttpReceiver, closed_port
from support.secrets import FLUSH_KEY

SLACK = 3.0  # generous: CI machines are slow; an unbounded flush would take >= 30 s here


class GateExporter(SpanExporter):
    """Blocks every export until the gate opens."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.exported: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.gate.wait(60)
        self.exported.extend(s.name for s in spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.gate.set()


def _to_execlave(base_url: str, timeout: float, key: str = "k") -> TraceIngestExporter:
    """The exporter the client builds for Execlave's trace-ingest API."""
    return TraceIngestExporter(api_key=key, base_url=base_url, masker=str, timeout=timeout)


def _spans(tel, n: int = 1) -> None:
    for i in range(n):
        with tel.governed_span(f"s{i}"):
            pass


def test_flush_and_shutdown_bounded_against_black_hole(make_telemetry, no_global_provider):
    with BlackHole() as hole:
        tel = make_telemetry(execlave_exporter=_to_execlave(hole.endpoint, 30.0), schedule_delay=0.01)
        _spans(tel, 3)
        t0 = time.monotonic()
        assert tel.flush(0.5) is False
        flush_s = time.monotonic() - t0
        t0 = time.monotonic()
        assert tel.shutdown(0.5) is False
        shutdown_s = time.monotonic() - t0
        assert hole.accepted >= 1  # the exporter really connected and hung
    assert flush_s < 0.5 + SLACK
    assert shutdown_s < 0.5 + SLACK


def test_failed_export_against_closed_port_is_counted_and_logged_once(
    make_telemetry, no_global_provider, caplog
):
    caplog.set_level(logging.WARNING, logger="execlave")
    tel = make_telemetry(
        execlave_exporter=_to_execlave(f"http://127.0.0.1:{closed_port()}", 0.2), schedule_delay=0.01
    )
    _spans(tel, 2)
    assert tel.flush(10.0) is False
    _spans(tel, 1)
    assert tel.flush(10.0) is False
    stats = tel.stats()
    assert stats["spans_dropped_export_failed"] == 3
    assert stats["spans_exported"] == 0
    drops = [r for r in caplog.records if r.name == "execlave" and "dropping spans" in r.getMessage()]
    assert len(drops) == 1
    assert "k" not in [a for r in caplog.records for a in (r.args or ())]


def test_flush_bounded_against_closed_port_with_long_export_timeout(make_telemetry, no_global_provider):
    tel = make_telemetry(execlave_exporter=_to_execlave(f"http://127.0.0.1:{closed_port()}", 30.0))
    _spans(tel)
    t0 = time.monotonic()
    # Newer exporters keep retrying for up to 30 s, older ones (1.27) fail at once: either way flush
    # reports the span as not delivered and neither call waits for the exporter.
    assert tel.flush(0.5) is False
    tel.shutdown(0.5)  # True or False depending on whether the failed export already settled
    assert time.monotonic() - t0 < 1.0 + SLACK
    stats = tel.stats()
    assert stats["spans_exported"] == 0
    assert stats["spans_dropped_export_failed"] == 1


def test_full_queue_drops_counts_and_never_blocks(caplog):
    caplog.set_level(logging.WARNING, logger="execlave")
    exporter = GateExporter()
    processor = BoundedBatchSpanProcessor(
        exporter, max_queue_size=4, max_export_batch_size=2, schedule_delay=0.01
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("execlave")

    def make_spans() -> None:
        for i in range(50):
            tracer.start_span(f"s{i}").end()

    worker = threading.Thread(target=make_spans, daemon=True)
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "span end blocked on a stuck exporter"
    # at most one in-flight batch (2) + a full queue (4) are kept; the rest is dropped
    assert processor.dropped_queue_full >= 50 - 6
    assert len([r for r in caplog.records if "queue full" in r.getMessage()]) == 1
    exporter.gate.set()
    assert processor.flush(10.0)
    assert processor.exported + processor.dropped_queue_full == 50
    assert processor.shutdown(5.0)


def test_only_matching_and_sampled_spans_are_queued():
    exporter = GateExporter()
    exporter.gate.set()
    processor = BoundedBatchSpanProcessor(exporter, span_filter=lambda s: s.name.startswith("keep"))
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for name in ("keep-1", "drop-1", "keep-2"):
        tracer.start_span(name).end()
    assert processor.flush(5.0)
    assert sorted(exporter.exported) == ["keep-1", "keep-2"]
    assert processor.shutdown(1.0)
    tracer.start_span("keep-late").end()
    assert processor.dropped_after_shutdown == 1


def test_stats_count_exported(make_telemetry, no_global_provider):
    with HttpReceiver() as rx:
        tel = make_telemetry(execlave_exporter=ExeclaveOtlpExporter(endpoint=rx.endpoint, api_key="k"))
        _spans(tel, 5)
        assert tel.flush(5.0)
        assert tel.stats()["spans_exported"] == 5
        assert tel.shutdown(5.0)
        assert len(rx.spans) == 5


EXIT_SCRIPT = textwrap.dedent(
    """
    import sys
    from execlave.connection.ingest import TraceIngestExporter
    from execlave.telemetry import Telemetry, TelemetryConfig
    exporter = TraceIngestExporter(api_key="k", base_url=sys.argv[1], masker=str, timeout=60.0)
    tel = Telemetry(
        TelemetryConfig(execlave_exporter=exporter, shutdown_timeout=1.0, schedule_delay=0.01),
        masker=str,
    )
    for i in range(3):
        with tel.governed_span(f"s{i}"):
            pass
    print("spans made", flush=True)
    """
)


@pytest.mark.parametrize("endpoint_kind", ["black_hole", "closed"])
def test_process_exit_not_held_by_dead_endpoint(endpoint_kind, tmp_path: Path):
    script = tmp_path / "exit_check.py"
    script.write_text(EXIT_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    for name in list(env):
        if name.startswith("OTEL_"):
            del env[name]
    with BlackHole() as hole:
        endpoint = hole.endpoint if endpoint_kind == "black_hole" else f"http://127.0.0.1:{closed_port()}"
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, str(script), endpoint], env=env, capture_output=True, text=True, timeout=50
        )
        elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    assert "spans made" in proc.stdout
    # interpreter start + imports + 1 s shutdown bound; the exporter alone would hold it for 60 s
    assert elapsed < 1.0 + 10.0


def test_api_key_absent_from_every_log_line_even_on_failures(make_telemetry, no_global_provider, caplog):
    key = FLUSH_KEY
    caplog.set_level(logging.DEBUG)
    with BlackHole() as hole:
        for endpoint in (f"http://127.0.0.1:{closed_port()}", hole.endpoint):
            tel = make_telemetry(execlave_exporter=_to_execlave(endpoint, 0.3, key), schedule_delay=0.01)
            _spans(tel, 2)
            tel.flush(5.0)
            tel.shutdown(1.0)
    assert caplog.records  # the failures were logged
    text = "\n".join(caplog.text.splitlines())
    assert key not in text
    assert not any(key in str(r.args) for r in caplog.records)
