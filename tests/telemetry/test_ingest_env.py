"""Where the key goes: only ``Authorization: Bearer``, only to Execlave's base URL, and nothing a
collector is configured with (``OTEL_EXPORTER_OTLP_*``: headers, compression, CA certificate,
credential provider) reaches Execlave. Through the real client (``Execlave(api_key=...)``)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from execlave import Execlave
from execlave.adapter import AgentIdentity
from execlave.policy import NO_POLICIES
from support.ingest_receiver import INGEST, IngestReceiver
from support.secrets import INGEST_KEY

COLLECTOR_TOKEN = "collector-token-not-for-execlave"


def _round(exe: Execlave, agent_id: str = "ops-assistant") -> None:
    with exe.round_span(AgentIdentity(agent_id)):
        pass


@pytest.fixture
def client(clean_otel_env: None) -> Iterator[Any]:
    made: list[Execlave] = []

    def make(endpoint: str, **kw: Any) -> Execlave:
        exe = Execlave(
            api_key=INGEST_KEY,
            base_url=endpoint,
            policies=NO_POLICIES,
            tracer_provider=TracerProvider(),
            **kw,
        )
        made.append(exe)
        return exe

    yield make
    for exe in made:
        exe.shutdown(1.0)


def _credential_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Register an OTLP credential provider (entry point ``opentelemetry_otlp_credential_provider``)
    whose session adds a collector credential header, as a collector deployment would."""
    (tmp_path / "collector_cred.py").write_text(
        "import requests\n"
        "def session():\n"
        "    s = requests.Session()\n"
        f"    s.headers['X-Collector-Credential'] = {COLLECTOR_TOKEN!r}\n"
        "    return s\n"
    )
    dist = tmp_path / "collector_cred-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: collector-cred\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[opentelemetry_otlp_credential_provider]\ncollector_cred = collector_cred:session\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER", "collector_cred")
    monkeypatch.setenv("OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER", "collector_cred")


def test_collector_otlp_settings_never_reach_execlave(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _credential_provider(tmp_path, monkeypatch)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Bearer {COLLECTOR_TOKEN},x-tenant=t1")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", f"x-collector-token={COLLECTOR_TOKEN}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip")
    with IngestReceiver(INGEST_KEY) as rx:
        exe = client(rx.endpoint)
        _round(exe)
        exe.flush(5.0)
        stats = exe.stats()
    assert rx.requests, "nothing reached Execlave"
    assert stats["traces_sent"] == 1 and stats["traces_rejected"] == stats["traces_undelivered"] == 0
    for request in rx.requests:
        assert request.header("Authorization") == f"Bearer {INGEST_KEY}"
        assert request.header("X-Collector-Credential") is None
        assert request.header("x-collector-token") is None
        assert request.header("x-tenant") is None
        assert request.header("Content-Encoding") is None
        assert COLLECTOR_TOKEN.encode() not in request.raw
    assert [r.path for r in rx.requests if r.method == "POST" and r.path.startswith("/api/v1/traces")] == [
        INGEST
    ]
    assert [rec["agentId"] for rec in rx.records] == ["ops-assistant"]


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make certificates")
def test_collector_ca_certificate_is_not_used_for_execlave(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    execlave_cert, execlave_key = _self_signed(tmp_path, "execlave")
    collector_cert, _ = _self_signed(tmp_path, "collector")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(execlave_cert, execlave_key)
    # Execlave's (private) CA comes from the standard SSL_CERT_FILE; the collector's CA from OTEL_*.
    monkeypatch.setenv("SSL_CERT_FILE", str(execlave_cert))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(collector_cert))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", str(collector_cert))
    with IngestReceiver(INGEST_KEY, tls=tls) as rx:
        exe = client(rx.endpoint)
        _round(exe)
        flushed = exe.flush(5.0)
    assert rx.requests, "no request got through TLS: the exporter verified Execlave with the collector's CA"
    assert flushed
    assert [rec["agentId"] for rec in rx.records] == ["ops-assistant"]


def test_key_never_follows_a_redirect(client: Any) -> None:
    with IngestReceiver(INGEST_KEY) as elsewhere, IngestReceiver(INGEST_KEY) as rx:
        rx.fault = (307, {}, {"Location": elsewhere.endpoint + INGEST})
        exe = client(rx.endpoint)
        _round(exe)
        assert exe.flush(5.0) is False
    assert elsewhere.requests == []
    assert any(r.path == INGEST for r in rx.requests)


def test_execlave_otlp_endpoint_only_when_configured(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from support.otlp import HttpReceiver

    with HttpReceiver() as otlp, IngestReceiver(INGEST_KEY) as rx:
        exe = client(rx.endpoint)  # no EXECLAVE_OTLP_ENDPOINT: the ingest API only
        _round(exe, "first-agent")
        assert exe.flush(5.0)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"x-collector-token={COLLECTOR_TOKEN}")
        monkeypatch.setenv("EXECLAVE_OTLP_ENDPOINT", otlp.endpoint)
        exe2 = client(rx.endpoint)  # configured: OTLP to that endpoint instead of the ingest API
        _round(exe2, "second-agent")
        assert exe2.flush(5.0)
    assert [rec["agentId"] for rec in rx.records] == ["first-agent"]
    assert [s.attributes["gen_ai.agent.id"] for s in otlp.spans] == ["second-agent"]
    (request,) = otlp.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["authorization"] == f"Bearer {INGEST_KEY}"
    assert "x-collector-token" not in headers
