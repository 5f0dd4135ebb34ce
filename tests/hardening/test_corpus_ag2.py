"""The adversarial corpus (``tests/adversarial/data``) through real instrumented AG2 1.x
``ag2.Agent``s on ``ag2.testing`` models: every case must raise PolicyBlockedError before the
model sees a blocked input and before any tool runs."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from ag2_v1.conftest import Model, Tools, require_ag2
from execlave import Execlave
from execlave.errors import PolicyBlockedError
from execlave.integrations.autogen import instrument_autogen_agent
from support.adversarial import INPUTS, TOOL_CASES, TRANSFORMS, expected_policy_type, input_cases
from support.spans import spans_named

from .conftest import ARGUMENT_ENCODINGS

require_ag2()
pytestmark = pytest.mark.ag2

from ag2 import Agent, DataInput  # noqa: E402
from ag2.events import ToolCallEvent  # noqa: E402

ADAPTER_TRANSFORMS = ["plain", "zero_width", "fullwidth", "combined", "after_100000"]
PLACEMENTS = ["text", "second_part", "data"]
INPUT_PARAMS = [
    pytest.param(kind, text, transform, placement, id=f"{kind}{i}-{transform}-{placement}")
    for kind, i, text, transform in input_cases(ADAPTER_TRANSFORMS)
    for placement in PLACEMENTS
]


def agent_for(model: Model, tools: Tools, names: list[str]) -> Any:
    made = []
    for name in dict.fromkeys(names):
        try:
            made.append(tools.make(name))
        except Exception:  # a name AG2 will not register: the call is still checked by name
            continue
    return Agent("ops", config=model.config, tools=made)


@pytest.mark.parametrize(("kind", "text", "transform", "placement"), INPUT_PARAMS)
async def test_injected_input_is_blocked_before_the_model(
    corpus_exe: Execlave, exporter: InMemorySpanExporter, kind: str, text: str, transform: str, placement: str
) -> None:
    payload = TRANSFORMS[transform](text)
    tools = Tools()
    model = Model("must never be produced")
    agent = instrument_autogen_agent(
        agent_for(model, tools, ["get_status"]), corpus_exe, agent_id="ops-assistant"
    )
    with pytest.raises(PolicyBlockedError) as info:
        if placement == "text":
            await agent.ask(payload)
        elif placement == "second_part":
            await agent.ask("Ticket attached.", payload)
        else:
            await agent.ask("See the record.", DataInput({"ticket": {"body": payload}}))
    assert model.calls == 0
    assert tools.ran == []
    assert expected_policy_type(kind) in {v["policyType"] for v in info.value.violations}
    (span,) = spans_named(exporter, "invoke_agent ops")
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["execlave.policy.decision"] == "block"


@pytest.mark.parametrize("text", INPUTS["injection"])
@pytest.mark.parametrize("transform", ["plain", "zero_width", "after_100000"])
async def test_injection_through_tool_output_never_reaches_the_model(
    corpus_exe: Execlave, text: str, transform: str
) -> None:
    tools = Tools(output=TRANSFORMS[transform](text))
    model = Model(ToolCallEvent("fetch_url", arguments="{}"), "must never be produced")
    agent = instrument_autogen_agent(
        agent_for(model, tools, ["fetch_url"]), corpus_exe, agent_id="ops-assistant"
    )
    with pytest.raises(PolicyBlockedError) as info:
        await agent.ask("Summarise the page")
    assert tools.ran == ["fetch_url"]
    assert model.calls == 1  # the model never saw the result
    assert {v["target"] for v in info.value.violations} == {"tool_output"}


TOOL_PARAMS = [
    pytest.param(case, encoding, id=f"{case['id']}-{encoding}")
    for case in TOOL_CASES
    for encoding in ARGUMENT_ENCODINGS
]


@pytest.mark.parametrize(("case", "encoding"), TOOL_PARAMS)
async def test_tool_call_case_is_blocked_before_any_tool_runs(
    corpus_exe: Execlave, exporter: InMemorySpanExporter, case: dict[str, Any], encoding: str
) -> None:
    names = [c["name"] for c in case["calls"]]
    encode = ARGUMENT_ENCODINGS[encoding]
    requested = [
        ToolCallEvent(c["name"], arguments=encode(c.get("arguments")), id=f"c{i}")
        for i, c in enumerate(case["calls"])
    ]
    tools = Tools()
    model = Model(requested, "must never be produced")
    agent = instrument_autogen_agent(
        agent_for(model, tools, [*names, "get_status"]), corpus_exe, agent_id="ops-assistant"
    )
    names_seen: list[str] = []
    with pytest.raises(PolicyBlockedError) as info:
        async with agent.run("Do the maintenance.") as run:
            run.stream.subscribe(lambda event: names_seen.append(type(event).__name__))
            await run.result()
    assert tools.ran == []
    assert "ToolCallsEvent" not in names_seen and "ToolResultEvent" not in names_seen
    assert model.calls == 1
    assert {v["toolName"] for v in info.value.violations} == set(case["blocked_tools"])
    checks = spans_named(exporter, "check_tool")
    assert {s.attributes["gen_ai.tool.name"] for s in checks} == set(names)
    assert spans_named(exporter, "execute_tool") == []
