"""Real in-process OTLP receivers on 127.0.0.1 for wire tests.

- :class:`HttpReceiver`: OTLP/HTTP (``POST /v1/traces``, ``POST /v1/metrics``), decodes
  ``ExportTraceServiceRequest`` / ``ExportMetricsServiceRequest``.
- :class:`GrpcReceiver`: OTLP/gRPC ``TraceService/Export``.
- :class:`BlackHole`: accepts TCP connections and never answers.
- :func:`closed_port`: a port nothing listens on.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = ["BlackHole", "GrpcReceiver", "HttpReceiver", "ReceivedMetric", "ReceivedSpan", "closed_port"]


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(_value(x) for x in v.array_value.values)
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind)


def _attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs if isinstance(kv, KeyValue)}


@dataclass
class ReceivedSpan:
    name: str
    scope: str
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    attributes: dict[str, Any]
    resource: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    status_code: int


@dataclass
class ReceivedMetric:
    """One metric of one export: its data points as (attributes, value) pairs (the sum for a
    counter, the count for a histogram)."""

    name: str
    unit: str
    scope: str
    resource: dict[str, Any]
    points: list[tuple[dict[str, Any], float]]


def _points(metric: Any) -> list[tuple[dict[str, Any], float]]:
    kind = metric.WhichOneof("data")
    data = getattr(metric, kind) if kind else None
    out: list[tuple[dict[str, Any], float]] = []
    for p in getattr(data, "data_points", None) or ():
        if kind == "histogram":
            value: float = p.count
        else:
            value = p.as_int if p.WhichOneof("value") == "as_int" else p.as_double
        out.append((_attrs(p.attributes), value))
    return out


@dataclass
class _Store:
    requests: list[dict[str, Any]] = field(default_factory=list)  # {"headers": {...}, "raw": bytes}
    spans: list[ReceivedSpan] = field(default_factory=list)
    metric_requests: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[ReceivedMetric] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def add_metrics(self, headers: dict[str, str], raw: bytes) -> None:
        req = metrics_service_pb2.ExportMetricsServiceRequest()
        req.ParseFromString(raw)
        decoded = [
            ReceivedMetric(m.name, m.unit, sm.scope.name, _attrs(rm.resource.attributes), _points(m))
            for rm in req.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
        ]
        with self.cond:
            self.metric_requests.append({"headers": headers, "raw": raw})
            self.metrics.extend(decoded)
            self.cond.notify_all()

    def add(self, headers: dict[str, str], raw: bytes) -> None:
        req = trace_service_pb2.ExportTraceServiceRequest()
        req.ParseFromString(raw)
        decoded: list[ReceivedSpan] = []
        for rs in req.resource_spans:
            resource = _attrs(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    decoded.append(
                        ReceivedSpan(
                            name=s.name,
                            scope=ss.scope.name,
                            trace_id=s.trace_id,
                            span_id=s.span_id,
                            parent_span_id=s.parent_span_id,
                            attributes=_attrs(s.attributes),
                            resource=resource,
                            events=[(e.name, _attrs(e.attributes)) for e in s.events],
                            status_code=s.status.code,
                        )
                    )
        with self.cond:
            self.requests.append({"headers": headers, "raw": raw})
            self.spans.extend(decoded)
            self.cond.notify_all()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.spans) < n and (left := deadline - time.monotonic()) > 0:
                self.cond.wait(left)
            return list(self.spans)


class _Receiver:
    """What both receivers expose: the decoded spans and raw requests they were sent."""

    store: _Store

    @property
    def spans(self) -> list[ReceivedSpan]:
        return list(self.store.spans)

    @property
    def requests(self) -> list[dict[str, Any]]:
        return list(self.store.requests)

    def wait_for(self, n: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        return self.store.wait_for(n, timeout)

    @property
    def metrics(self) -> list[ReceivedMetric]:
        return list(self.store.metrics)

    @property
    def metric_requests(self) -> list[dict[str, Any]]:
        return list(self.store.metric_requests)


class HttpReceiver(_Receiver):
    """OTLP/HTTP receiver; ``endpoint`` is the base URL (append ``/v1/traces`` for the signal URL).
    ``status``: what every export is answered with (e.g. 500 for a failing collector); the
    request is recorded either way."""

    def __init__(self, status: int = 200) -> None:
        self.store = _Store()
        store = self.store
        answer = status

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":  # the collector's exporters gzip
                    body = gzip.decompress(body)
                headers = {k.lower(): v for k, v in self.headers.items()}
                if self.path == "/v1/metrics":
                    store.add_metrics(headers, body)
                    payload = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
                elif self.path == "/v1/traces":
                    store.add(headers, body)
                    payload = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(answer)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class GrpcReceiver(_Receiver):
    """OTLP/gRPC receiver; ``endpoint`` is ``http://127.0.0.1:PORT`` (insecure)."""

    def __init__(self) -> None:
        self.store = _Store()
        store = self.store

        class Servicer(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
                store.add(
                    {k.lower(): v for k, v in context.invocation_metadata()}, request.SerializeToString()
                )
                return trace_service_pb2.ExportTraceServiceResponse()

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Servicer(), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> GrpcReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None)


class BlackHole:
    """Accepts TCP connections, reads and discards, never answers."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            self._conns.append(conn)  # held open, never answered

    def __enter__(self) -> BlackHole:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        for c in self._conns:
            c.close()
        self._sock.close()


def closed_port() -> int:
    """A loopback port with nothing listening (connections are refused)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port
