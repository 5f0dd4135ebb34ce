"""Faults under the AgentChat adapter: span export failing never stops the agent nor
enforcement; an unexpected exception inside execlave's own enforcement path fails closed with
EnforcementUnavailableError (cause chained), the tool never runs, and the agent stays usable."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from agentchat.conftest import _quiet_replay_warnings, replay_client, require_agentchat, tool_calls  # noqa: F401
from execlave import Execlave
from execlave.errors import EnforcementUnavailableError, ExeclaveError, PolicyBlockedError
from execlave.integrations.autogen import instrument_autogen_agent
from support.adversarial import INPUTS
from support.spans import spans_named

from .conftest import ENGINE_ERRORS, Faulty, raise_in_engine

require_agentchat()

from autogen_agentchat.agents import AssistantAgent  # noqa: E402


def make_agent(exe: Execlave, responses: list[Any], ran: list[str]) -> tuple[Any, Any]:
    async def get_status(service: str) -> str:
        """Status of a service."""
        ran.append(f"get_status {service}")
        return "healthy"

    async def delete_database(db: str) -> str:
        """Delete a database."""
        ran.append(f"delete_database {db}")
        return "deleted"

    client = replay_client(responses)
    agent = AssistantAgent(
        "ops", model_client=client, tools=[get_status, delete_database], reflect_on_tool_use=True
    )
    instrument_autogen_agent(agent, exe, agent_id="ops-assistant")
    return agent, client


async def test_agent_works_and_enforcement_blocks_while_export_fails(
    faulty: Faulty, exporter: InMemorySpanExporter
) -> None:
    for attempt in range(2):  # before and after the exporter has failed
        ran: list[str] = []
        agent, _ = make_agent(
            faulty.exe, [tool_calls(("c1", "get_status", '{"service": "db"}')), "db is healthy"], ran
        )
        result = await agent.run(task="How is the db?")
        assert ran == ["get_status db"] and result.messages[-1].content == "db is healthy"

        agent, client = make_agent(faulty.exe, [tool_calls(("c2", "delete_database", '{"db": "prod"}'))], ran)
        with pytest.raises(PolicyBlockedError):
            await agent.run(task="Clean up prod.")
        assert ran == ["get_status db"]

        agent, client = make_agent(faulty.exe, ["never"], ran)
        with pytest.raises(PolicyBlockedError):
            await agent.run(task=INPUTS["injection"][0])
        assert int(client._current_index) == 0
        if attempt == 0:
            faulty.assert_export_failed()
    decisions = [s.attributes["execlave.policy.decision"] for s in spans_named(exporter, "invoke_agent ops")]
    assert decisions.count("block") == 4


@pytest.mark.parametrize("error", ENGINE_ERRORS, ids=lambda e: e.__name__)
@pytest.mark.parametrize("phase", ["input", "tool_call"])
async def test_engine_failure_fails_closed(
    corpus_exe: Execlave,
    exporter: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
    error: type,
    phase: str,
) -> None:
    raised = raise_in_engine(corpus_exe, monkeypatch, error, only_tool_calls=phase == "tool_call")
    ran: list[str] = []
    agent, client = make_agent(
        corpus_exe,
        [tool_calls(("c1", "get_status", '{"service": "db"}')), "never", "still usable"],
        ran,
    )
    with pytest.raises(ExeclaveError) as info:
        await agent.run(task="How is the db?")
    assert type(info.value) is EnforcementUnavailableError
    assert type(info.value.__cause__) is error
    assert raised and ran == []
    assert int(client._current_index) == (0 if phase == "input" else 1)
    (span,) = spans_named(exporter, "invoke_agent ops")
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["execlave.enforcement.unavailable"] is True
    # The model context holds no dangling tool call: once execlave works again, so does the agent.
    monkeypatch.undo()
    client._current_index = 2
    result = await agent.run(task="anything else?")
    assert result.messages[-1].content == "still usable"


async def test_masker_failure_never_breaks_the_agent_and_exports_nothing_unmasked(
    make_exe: Any, exporter: InMemorySpanExporter
) -> None:
    """A masker that raises: the turn runs and is enforced as always; the texts that could not
    be masked are exported only as their length."""
    exe = make_exe(capture_content=True)

    def broken(text: str) -> str:
        raise RuntimeError("masker bug")

    exe._telemetry._masker = broken
    card = "4111 1111 1111 1111"
    ran: list[str] = []
    agent, _ = make_agent(exe, [tool_calls(("c1", "get_status", '{"service": "db"}')), "db is healthy"], ran)
    result = await agent.run(task="How is the db?")
    assert ran == ["get_status db"] and result.messages[-1].content == "db is healthy"
    agent, _ = make_agent(exe, [tool_calls(("c2", f"delete_database {card}", '{"db": "prod"}'))], ran)
    with pytest.raises(PolicyBlockedError):
        await agent.run(task="Clean up prod.")
    spans = exporter.get_finished_spans()
    text = "\n".join(s.to_json(indent=None) for s in spans)
    assert card not in text and card.replace(" ", "") not in text
    names = {s.attributes.get("gen_ai.tool.name") for s in spans} - {None}
    assert f"[{len('delete_database ' + card)} characters omitted]" in names
