import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from execlave import Execlave
from support.execlave_api import ExeclaveAPI
from support.secrets import CLOUD_KEY

KEY = CLOUD_KEY

TOOL_POLICY = {
    "id": "no-delete",
    "name": "No destructive tools",
    "policyType": "tool_invocation",
    "enforcementMode": "block",
    "ruleDefinition": {"deny": ["delete_*"]},
}


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
