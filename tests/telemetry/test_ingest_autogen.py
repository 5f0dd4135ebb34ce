"""Real classic AutoGen agents (``ConversableAgent``, scripted replies, offline) instrumented by
execlave; their spans go through the bounded batch processor and the trace-ingest exporter, as
the client wires them, to a strict ingest receiver on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from execlave import Execlave
from execlave.connection.ingest import TraceIngestExporter
from execlave.errors import PolicyBlockedError
from execlave.integrations.autogen import instrument_autogen_agent
from execlave.policy import load_policies
from execlave.policy.pii import mask_pii
from execlave.telemetry import BoundedBatchSpanProcessor
from execlave.telemetry.processors import is_execlave_span
from support.ingest_receiver import IngestReceiver
from support.policies import TOOL_DENY
from support.requires import require
from support.secrets import INGEST_KEY

autogen = require("autogen")
pytestmark = pytest.mark.classic


def _scripted(name: str, *replies: Any) -> Any:
    queue = list(replies)

    def reply(recipient: Any, messages: Any = None, sender: Any = None, config: Any = None) -> Any:
        return True, (queue.pop(0) if queue else "TERMINATE")

    agent = autogen.ConversableAgent(
        name, llm_config=False, human_input_mode="NEVER", code_execution_config=False
    )
    agent.register_reply([autogen.Agent, None], reply, position=0)
    return agent


def _executor(ran: list[str]) -> Any:
    def get_status(host: str) -> str:
        ran.append(host)
        return f"{host} healthy, on-call alice@example.com"

    return autogen.ConversableAgent(
        "executor",
        llm_config=False,
        human_input_mode="NEVER",
        code_execution_config=False,
        function_map={"get_status": get_status, "delete_database": lambda **kw: ran.append("deleted")},
        max_consecutive_auto_reply=3,
        default_auto_reply="TERMINATE",
    )


def _call(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"content": None, "tool_calls": [{"id": call_id, "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)}}]}  # fmt: skip


@pytest.fixture
def make_rig(clean_otel_env: None) -> Iterator[Callable[..., Rig]]:
    stack: list[Any] = []

    def make(*, capture: bool) -> Rig:
        rx = IngestReceiver(INGEST_KEY).__enter__()
        provider = TracerProvider()
        exporter = TraceIngestExporter(
            api_key=INGEST_KEY,
            base_url=rx.endpoint,
            environment="staging",
            capture_content=capture,
            masker=mask_pii,
        )
        processor = BoundedBatchSpanProcessor(exporter, schedule_delay=0.01, span_filter=is_execlave_span)
        provider.add_span_processor(processor)
        exe = Execlave(
            policies=load_policies([TOOL_DENY]),
            tracer_provider=provider,
            environment="staging",
            capture_content=capture,
        )
        stack.append((rx, processor, exe))
        return Rig(exe, rx, exporter, processor)

    yield make
    for rx, processor, exe in stack:
        exe.shutdown(1.0)
        processor.shutdown(1.0)
        rx.__exit__(None, None, None)


@dataclass
class Rig:
    exe: Execlave
    rx: IngestReceiver
    exporter: TraceIngestExporter
    processor: BoundedBatchSpanProcessor

    def flush(self) -> None:
        assert self.processor.flush(10.0)


def test_a_tool_round_arrives_as_records(make_rig: Any) -> None:
    rig = make_rig(capture=False)
    exe, rx, exporter = rig.exe, rig.rx, rig.exporter
    ran: list[str] = []
    assistant = _scripted("assistant", _call("get_status", {"host": "web-1"}, "call-1"), "web-1 is fine")
    executor = _executor(ran)
    instrument_autogen_agent(assistant, exe, agent_id="ops-assistant", session_id="sess-9", user_id="u-7")
    instrument_autogen_agent(executor, exe, agent_id="ops-executor", session_id="sess-9", user_id="u-7")
    executor.initiate_chat(assistant, message="Is web-1 healthy?", max_turns=2, silent=True)
    assert ran == ["web-1"]
    rig.flush()
    assert rx.invalid == []
    records = rx.records
    by_id = {r["traceId"]: r for r in records}
    (check,) = [r for r in records if r["metadata"]["spanName"] == "check_tool get_status"]
    (execute,) = [r for r in records if r["metadata"]["spanName"] == "execute_tool get_status"]
    assert check["spanType"] == execute["spanType"] == "tool"
    assert by_id[check["parentTraceId"]]["metadata"]["spanName"] == "invoke_agent assistant"
    assert by_id[check["parentTraceId"]]["agentId"] == "ops-assistant"
    assert by_id[execute["parentTraceId"]]["metadata"]["spanName"] == "invoke_agent executor"
    assert execute["agentId"] == "ops-executor" and check["metadata"]["toolCallId"] == "call-1"
    assert execute["metadata"].get("toolCallId") in (
        None,
        "call-1",
    )  # pyautogen 0.2 runs tools without the id
    rounds = [r for r in records if r["spanType"] == "agent"]
    assert rounds and all(r["status"] == "success" for r in records)
    assert {(r["sessionId"], r["userId"], r["environment"]) for r in records} == {
        ("sess-9", "u-7", "staging")
    }
    assert all("input" not in r and "output" not in r for r in records)
    assert b"alice@example.com" not in b"".join(req.raw for req in rx.requests)
    assert exporter.stats()["traces_sent"] == len(records)


def test_a_blocked_tool_call_is_a_policy_blocked_round(make_rig: Any) -> None:
    rig = make_rig(capture=False)
    exe, rx = rig.exe, rig.rx
    ran: list[str] = []
    assistant = _scripted("assistant", _call("delete_database", {"name": "prod"}, "call-2"), "never")
    executor = _executor(ran)
    instrument_autogen_agent(assistant, exe, agent_id="ops-assistant")
    instrument_autogen_agent(executor, exe, agent_id="ops-executor")
    with pytest.raises(PolicyBlockedError):
        executor.initiate_chat(assistant, message="Clean up prod", max_turns=2, silent=True)
    assert ran == []
    rig.flush()
    assert rx.invalid == []
    (round_,) = [r for r in rx.records if r["metadata"]["spanName"] == "invoke_agent assistant"]
    (check,) = [r for r in rx.records if r["metadata"]["spanName"] == "check_tool delete_database"]
    assert round_["status"] == check["status"] == "policy_blocked"
    assert round_["errorType"] == "PolicyBlockedError"
    assert round_["errorMessage"] == "blocked by policy deny-destructive"
    assert check["parentTraceId"] == round_["traceId"]
    assert check["metadata"]["violations"][0]["policyId"] == "deny-destructive"
    assert not [r for r in rx.records if r["metadata"]["spanName"].startswith("execute_tool")]


def test_tool_results_are_sent_masked_when_capture_is_on(make_rig: Any) -> None:
    rig = make_rig(capture=True)
    exe, rx = rig.exe, rig.rx
    ran: list[str] = []
    assistant = _scripted("assistant", _call("get_status", {"host": "db-1"}, "call-3"), "ok")
    executor = _executor(ran)
    instrument_autogen_agent(assistant, exe, agent_id="ops-assistant")
    instrument_autogen_agent(executor, exe, agent_id="ops-executor")
    executor.initiate_chat(assistant, message="Is db-1 healthy?", max_turns=2, silent=True)
    rig.flush()
    (execute,) = [r for r in rx.records if r["metadata"]["spanName"] == "execute_tool get_status"]
    assert execute["output"] == "db-1 healthy, on-call [EMAIL]"
    assert execute["metadata"]["contentCaptured"] is True
    assert b"alice@example.com" not in b"".join(req.raw for req in rx.requests)
