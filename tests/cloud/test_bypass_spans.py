"""fail_open is never silent: every pass without a decision is an event on the round's span
(and a counter), for the classic adapter's sync and async paths."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from execlave import Execlave
from execlave.integrations.autogen import instrument_autogen_agent
from support.otlp import closed_port
from support.requires import require

from .conftest import KEY


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_fail_open_pass_is_an_event_on_the_round_span(tmp_path, use_async):
    autogen = require("autogen")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    exe = Execlave(
        KEY,
        base_url=f"http://127.0.0.1:{closed_port()}",  # no server, no cache: nothing ever loads
        cache_dir=tmp_path,
        request_timeout=0.2,
        enforcement_on_outage="fail_open",
        tracer_provider=provider,
    )
    try:
        agent = autogen.ConversableAgent("ops", llm_config=False, human_input_mode="NEVER")
        agent.register_reply([autogen.Agent, None], lambda *a, **k: (True, "done"), position=0)
        instrument_autogen_agent(agent, exe, agent_id="ops-assistant")
        messages = [{"role": "user", "content": "restart web-1"}]
        if use_async:
            reply = asyncio.run(agent.a_generate_reply(messages=messages))
        else:
            reply = agent.generate_reply(messages=messages)
        assert reply == "done"  # fail_open: the round passed...
        assert exe.stats()["bypasses"] == 1  # ...counted...
    finally:
        exe.shutdown(timeout=0.5)
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "invoke_agent ops"]
    assert span.attributes["execlave.enforcement.bypassed"] is True  # ...and on the span
    (event,) = [e for e in span.events if e.name == "execlave.enforcement.bypass"]
    assert "no policy set loaded" in event.attributes["execlave.bypass.reason"]
