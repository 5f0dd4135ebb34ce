"""A loopback Execlave (tests/support/execlave_api.py) and clients pointed at it. The ``api``
fixture fails the test if any request of ours reached a route the fake does not serve, or sent a
body its strict schemas refuse (unless the test empties ``api.invalid`` itself)."""

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
    with ExeclaveAPI(api_key=KEY) as server:
        yield server
        assert server.unknown == [], f"requests to routes Execlave does not serve: {server.unknown}"
        assert server.invalid == [], f"bodies Execlave would refuse: {server.invalid}"


@pytest.fixture
def exporter():
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter):
    p = TracerProvider()
    p.add_span_processor(SimpleSpanProcessor(exporter))
    return p


@pytest.fixture
def make_client(provider):
    made = []

    def make(base_url, **kw):
        kw.setdefault("api_key", KEY)
        kw.setdefault("request_timeout", 0.5)
        kw.setdefault("status_poll_interval", 0.05)
        kw.setdefault("approval_poll_interval", 0.02)
        client = Execlave(base_url=base_url, tracer_provider=provider, **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        client.shutdown(timeout=0.5)
