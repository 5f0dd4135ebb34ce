"""Flush / shutdown / exit wall time with the OTLP endpoint down: execlave vs the stock
BatchSpanProcessor, same run.

    pip install -e . opentelemetry-exporter-otlp-proto-http grpcio   # tests/support/otlp.py needs grpc
    PYTHONPATH=src:tests python benchmarks/flush_outage.py [--export-timeout 10] [--cap 20] 2>/dev/null

(stderr carries the OTLP exporter's retry warnings.)

Endpoints: a black hole (accepts TCP, never answers) and a closed port (connection refused).
The exporter is the real OTLP/HTTP exporter with ``timeout=--export-timeout`` in both cases.
The stock processor's calls run in a daemon thread capped at ``--cap`` seconds so the benchmark
itself stays bounded; a capped figure is printed as ``>cap``. Exit time is a fresh interpreter
that makes 3 spans and exits (its import time is included and reported separately).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from execlave.telemetry import BoundedBatchSpanProcessor
from support.otlp import BlackHole, closed_port

ROOT = Path(__file__).resolve().parents[1]


def _timed(fn: Callable[[], object], cap: float) -> float | None:
    done = threading.Event()

    def run() -> None:
        try:
            fn()
        finally:
            done.set()

    t0 = time.monotonic()
    threading.Thread(target=run, daemon=True).start()
    return time.monotonic() - t0 if done.wait(cap) else None


def _one(
    kind: str, endpoint: str, timeout: float, export_timeout: float, cap: float
) -> dict[str, float | None]:
    """Each (processor, operation) pair gets a fresh processor with 20 spans whose export is hanging."""
    out: dict[str, float | None] = {}
    for name in ("execlave", "stock"):
        for op in ("flush", "shutdown"):
            exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", timeout=export_timeout)
            proc: Any
            if name == "execlave":
                proc = BoundedBatchSpanProcessor(exporter, schedule_delay=0.01)
            else:
                proc = BatchSpanProcessor(exporter, schedule_delay_millis=10)
            provider = TracerProvider(shutdown_on_exit=False)
            provider.add_span_processor(proc)
            tracer = provider.get_tracer("execlave")
            for i in range(20):
                tracer.start_span(f"s{i}").end()
            time.sleep(0.05)  # let the first export start and hang
            if name == "execlave":
                fn = (
                    (lambda p=proc: p.flush(timeout))
                    if op == "flush"
                    else (lambda p=proc: p.shutdown(timeout))
                )
            else:
                ms = int(timeout * 1000)
                if op == "flush":
                    fn = lambda p=proc, ms=ms: p.force_flush(ms)  # noqa: E731
                else:
                    fn = lambda p=proc: p.shutdown()  # noqa: E731
            out[f"{name}_{op}"] = _timed(fn, cap)
    return out


EXIT_SCRIPT = textwrap.dedent(
    """
    import sys, time
    t0 = time.monotonic()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from execlave.telemetry import Telemetry, TelemetryConfig
    which, endpoint = sys.argv[1], sys.argv[2]
    export_timeout, shutdown_timeout = float(sys.argv[3]), float(sys.argv[4])
    if which == "execlave":  # execlave's pipeline to Execlave's trace-ingest API
        from execlave.connection.ingest import TraceIngestExporter
        exporter = TraceIngestExporter(api_key="k", base_url=endpoint, masker=str, timeout=export_timeout)
        tel = Telemetry(TelemetryConfig(execlave_exporter=exporter, shutdown_timeout=shutdown_timeout,
                                        schedule_delay=0.01), masker=str)
        tracer = tel.tracer
    else:
        provider = TracerProvider()  # stock: SDK's own atexit shutdown
        exporter = OTLPSpanExporter(endpoint=endpoint + "/v1/traces", timeout=export_timeout)
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=10))
        tracer = provider.get_tracer("execlave")
    for i in range(3):
        tracer.start_span(f"s{i}").end()
    time.sleep(0.05)
    print(f"{time.monotonic() - t0:.3f}", flush=True)
    """
)


def _exit(which: str, endpoint: str, export_timeout: float, shutdown_timeout: float, cap: float) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", EXIT_SCRIPT, which, endpoint, str(export_timeout), str(shutdown_timeout)],
            env=env,
            capture_output=True,
            text=True,
            timeout=cap,
        )
    except subprocess.TimeoutExpired:
        return f">{cap:.0f}"
    total = time.monotonic() - t0
    try:
        startup = float(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return f"{total:.2f} (err)"
    return f"{total:.2f} (after spans {total - startup:.2f})"


def _fmt(v: float | None, cap: float) -> str:
    return f">{cap:.0f}" if v is None else f"{v:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--export-timeout", type=float, default=10.0)
    ap.add_argument("--cap", type=float, default=20.0)
    ap.add_argument("--timeouts", type=float, nargs="+", default=[0.5, 2.0])
    args = ap.parse_args()
    with BlackHole() as hole:
        endpoints = {"black-hole": hole.endpoint, "closed": f"http://127.0.0.1:{closed_port()}"}
        print(f"OTLP/HTTP exporter timeout={args.export_timeout}s; seconds (wall); cap={args.cap}s\n")
        head = f"{'endpoint':<11} {'timeout':>7} | {'exe flush':>9} {'stock flush':>11} {'ratio':>6} | "
        head += f"{'exe shutdown':>12} {'stock shutdown':>14} {'ratio':>6}"
        print(head)
        print("-" * len(head))
        for kind, endpoint in endpoints.items():
            for timeout in args.timeouts:
                r = _one(kind, endpoint, timeout, args.export_timeout, args.cap)

                def ratio(a: float | None, b: float | None) -> str:
                    b = args.cap if b is None else b
                    return f"{b / a:.1f}x" if a else "-"

                ef, sf = r["execlave_flush"], r["stock_flush"]
                es, ss = r["execlave_shutdown"], r["stock_shutdown"]
                print(
                    f"{kind:<11} {timeout:>7.1f} | {_fmt(ef, args.cap):>9} {_fmt(sf, args.cap):>11} "
                    f"{ratio(ef, sf):>6} | {_fmt(es, args.cap):>12} {_fmt(ss, args.cap):>14} "
                    f"{ratio(es, ss):>6}"
                )
        print()
        print(f"process exit (3 spans, shutdown timeout 1.0 s, export timeout {args.export_timeout}s), s:")
        for kind, endpoint in endpoints.items():
            exe = _exit("execlave", endpoint, args.export_timeout, 1.0, args.cap + 10)
            stock = _exit("stock", endpoint, args.export_timeout, 1.0, args.cap + 10)
            print(f"  {kind:<11} execlave {exe:<28} stock {stock}")


if __name__ == "__main__":
    main()
