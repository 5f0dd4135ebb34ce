import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from execlave import Execlave
from support.execlave_api import ExeclaveAPI

KEY = "exk_live_CLOUDTEST_7d1e0c9b8a7f6e5d4c3b"

TOOL_POLICY = {
    "id": "no-delete",
    "name": "No destructive tools",
    "policyType": "tool_invocation",
    "enforcementMode": "block",
    "ruleDefinition": {"deny": ["delete_*"]},
}


@pytest.fixture(autouse=True)
def key_never_logged(caplog):
    """Across every cloud test: capture everything at DEBUG (ours, httpx, httpcore) and assert
    the API key is in no log line."""
    caplog.set_level(logging.DEBUG)
    yield
    records = [r for phase in ("setup", "call", "teardown") for r in caplog.get_records(phase)]
    for record in records:
        text = record.getMessage() + (str(record.exc_info[1]) if record.exc_info else "")
        assert KEY not in text, f"API key leaked in log record {record.name}: {text!r}"
        assert KEY not in caplog.handler.format(record)


@pytest.fixture
def api():
    with ExeclaveAPI(api_key=KEY, policies=[TOOL_POLICY]) as server:
        yield server


@pytest.fixture
def provider():
    p = TracerProvider()
    p.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    return p


@pytest.fixture
def make_client(tmp_path, provider):
    made = []

    def make(base_url, **kw):
        kw.setdefault("api_key", KEY)
        kw.setdefault("cache_dir", tmp_path / "cache")
        kw.setdefault("request_timeout", 0.5)
        kw.setdefault("policy_refresh_interval", 0.1)
        client = Execlave(base_url=base_url, tracer_provider=provider, **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        client.shutdown(timeout=0.5)
