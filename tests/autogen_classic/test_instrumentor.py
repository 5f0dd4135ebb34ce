"""Zero-code setup: ``opentelemetry-instrument`` on an unmodified two-agent script governs and
traces its agents through the ``autogen`` entry point (AutoGenInstrumentor); in-process, the
instrumentor skips agents instrumented by hand and ``uninstrument()`` restores everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from execlave import Execlave
from execlave.errors import EnforcementUnavailableError, PolicyBlockedError
from execlave.integrations.autogen import instrument_autogen_agent
from support.conversations import ROOT, assert_one_conversation, by_trace
from support.otlp import HttpReceiver
from support.policies import TOOL_DENY
from support.requires import require

from .conftest import Script, tool_call
from .test_classic import Recorder, executor_agent, scripted_agent

autogen = require("autogen")
require("opentelemetry.instrumentation.instrumentor")  # 0.48b0 needs pkg_resources
from execlave.integrations.autogen.instrumentor import AutoGenInstrumentor, default_agent_id  # noqa: E402

pytestmark = pytest.mark.classic
APP = Path(__file__).resolve().parents[1] / "support" / "apps" / "two_agents_classic.py"


def test_opentelemetry_instrument_governs_an_unmodified_script(tmp_path: Path) -> None:
    policy = tmp_path / "policies.json"
    policy.write_text(json.dumps([TOOL_DENY]))
    tool = Path(sys.executable).with_name("opentelemetry-instrument")
    assert tool.exists(), "the dev extra installs opentelemetry-instrumentation"
    with HttpReceiver() as receiver:
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_SERVICE_NAME": "zero-code-app",
            "EXECLAVE_POLICY_FILE": str(policy),
        }
        env.pop("EXECLAVE_API_KEY", None)
        proc = subprocess.run(
            [str(tool), sys.executable, str(APP)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        lines = [line for line in proc.stdout.splitlines() if line.startswith(("chat ", "ran:"))]
        assert lines == ["chat ok", "chat stopped: PolicyBlockedError", "ran: ['get_status']"]
        spans = receiver.wait_for(8)
    traces = by_trace(spans)
    assert len(traces) == 2
    for chat in traces.values():
        assert_one_conversation(chat)
    ids = {s.attributes.get("gen_ai.agent.id") for s in spans if s.name != ROOT}
    assert ids == {"ops-assistant", "ops-executor"}
    assert {s.resource["service.name"] for s in spans} == {"zero-code-app"}
    blocked = [s for s in spans if s.name == "check_tool delete_logs"]
    assert [s.attributes["execlave.policy.decision"] for s in blocked] == ["block"]


@pytest.fixture
def instrumentor(exe: Execlave) -> Any:
    inst = AutoGenInstrumentor()
    inst.instrument(client=exe)
    yield inst
    inst.uninstrument()


def test_default_agent_id_is_kebab_case_of_the_name() -> None:
    class A:
        def __init__(self, name: Any) -> None:
            self.name = name

    assert default_agent_id(A("ops_assistant")) == "ops-assistant"
    assert default_agent_id(A("OpsExecutor")) == "ops-executor"
    assert default_agent_id(A("chat manager 2")) == "chat-manager-2"
    assert default_agent_id(A("???")) == "agent"


def test_agents_created_after_instrument_are_governed_and_traced(
    instrumentor: Any, exporter: InMemorySpanExporter
) -> None:
    tools = Recorder()
    assistant = scripted_agent(
        "assistant", Script({"content": None, "tool_calls": [tool_call("delete_logs", {}, "c")]})
    )
    executor = executor_agent("executor", {"delete_logs": tools.fn("delete_logs")})
    with pytest.raises(PolicyBlockedError):
        executor.initiate_chat(assistant, message="free space", max_turns=2, silent=True)
    assert tools.calls == []
    assert_one_conversation(list(exporter.get_finished_spans()))
    assert assistant._execlave_instrumented and executor._execlave_instrumented


def test_hand_instrumented_agents_are_skipped(
    instrumentor: Any, exe: Execlave, exporter: InMemorySpanExporter
) -> None:
    assistant = scripted_agent("assistant", Script("hi"))
    instrument_autogen_agent(assistant, exe, agent_id="my-own-id")
    assistant.generate_reply(messages=[{"role": "user", "content": "hello"}])
    (span,) = exporter.get_finished_spans()
    assert span.attributes["gen_ai.agent.id"] == "my-own-id"


def test_uninstrument_restores_classes_and_agents(exe: Execlave, exporter: InMemorySpanExporter) -> None:
    init = autogen.ConversableAgent.__init__
    inst = AutoGenInstrumentor()
    inst.instrument(client=exe, agent_id=lambda agent: f"x-{default_agent_id(agent)}")
    pending = scripted_agent("pending", Script("a"))
    used = scripted_agent("used", Script("b", "c"))
    used.generate_reply(messages=[{"role": "user", "content": "hello"}])
    assert exporter.get_finished_spans()[0].attributes["gen_ai.agent.id"] == "x-used"
    inst.uninstrument()
    assert autogen.ConversableAgent.__init__ is init
    for agent in (pending, used):
        assert not getattr(agent, "_execlave_instrumented", False)
        assert not {"generate_reply", "initiate_chat", "a_generate_reply"} & set(vars(agent))
    exporter.clear()
    used.generate_reply(messages=[{"role": "user", "content": "hello"}])
    fresh = scripted_agent("fresh", Script("d"))
    fresh.generate_reply(messages=[{"role": "user", "content": "hello"}])
    assert exporter.get_finished_spans() == ()


def test_a_client_that_cannot_be_built_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXECLAVE_POLICY_FILE", "/nonexistent/policies.yaml")
    inst = AutoGenInstrumentor()
    inst.instrument()
    try:
        agent = scripted_agent("assistant", Script("hi"))
        with pytest.raises(EnforcementUnavailableError, match="could not create"):
            agent.generate_reply(messages=[{"role": "user", "content": "hello"}])
    finally:
        inst.uninstrument()


def test_a_bad_agent_id_fails_every_call(exe: Execlave) -> None:
    inst = AutoGenInstrumentor()
    inst.instrument(client=exe, agent_id=lambda agent: agent.name)  # not kebab-case
    try:
        agent = scripted_agent("Ops Assistant", Script("hi", "hi"))
        for _ in range(2):  # never silently ungoverned on a retry
            with pytest.raises(ValueError, match="kebab-case"):
                agent.generate_reply(messages=[{"role": "user", "content": "hello"}])
    finally:
        inst.uninstrument()
