"""What leaves the process through spans when content capture is off, driven through real classic
AutoGen (ag2 0.14) agents: model-chosen tool names and exception texts are masked and bounded in
every exported field (span names, attributes, events, status), and the console tree never prints a
control character."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from execlave import Execlave
from execlave.errors import PolicyBlockedError
from execlave.policy import load_policies
from execlave.telemetry.bounds import MAX_MESSAGE_CHARS, MAX_NAME_CHARS
from support.policies import TOOL_DENY
from support.requires import require

CARD = "4111 1111 1111 1111"
CARD_DIGITS = CARD.replace(" ", "")
MIB = 1024 * 1024


def exported(spans: Sequence[ReadableSpan]) -> str:
    """Everything a span exporter gets: name, attributes, events, status, resource (as JSON)."""
    return "\n".join(s.to_json(indent=None) for s in spans)


def assert_no_card(spans: Sequence[ReadableSpan]) -> None:
    text = exported(spans)
    assert CARD not in text and CARD_DIGITS not in text


@pytest.fixture
def make_exe(provider: TracerProvider) -> Iterator[Callable[..., Execlave]]:
    made: list[Execlave] = []

    def make(**kwargs: Any) -> Execlave:
        kwargs.setdefault("policies", load_policies([TOOL_DENY]))
        kwargs.setdefault("tracer_provider", provider)
        exe = Execlave(**kwargs)
        made.append(exe)
        return exe

    yield make
    for exe in made:
        exe.shutdown(timeout=1.0)


def calls(*names: str, call_id: str = "c") -> dict[str, Any]:
    return {
        "content": None,
        "tool_calls": [
            {"id": f"{call_id}{i}", "type": "function", "function": {"name": n, "arguments": "{}"}}
            for i, n in enumerate(names)
        ],
    }


def assistant(exe: Execlave, reply: Callable[..., Any]) -> Any:
    autogen = require("autogen")
    agent = autogen.ConversableAgent(
        "assistant", llm_config=False, human_input_mode="NEVER", code_execution_config=False
    )
    agent.register_reply([autogen.Agent, None], reply, position=0)
    from execlave.integrations.autogen import instrument_autogen_agent

    instrument_autogen_agent(agent, exe, agent_id="assistant")
    return agent


def scripted(value: Any) -> Callable[..., Any]:
    def reply(recipient: Any, messages: Any = None, sender: Any = None, config: Any = None) -> Any:
        return True, value

    return reply


ASK = [{"role": "user", "content": "tidy up"}]


# -- tool names ---------------------------------------------------------------------------------


def test_card_number_in_a_blocked_tool_name_is_exported_nowhere(make_exe, exporter):
    exe = make_exe()
    agent = assistant(exe, scripted(calls(f"delete_records {CARD}", call_id=f"call {CARD} ")))
    with pytest.raises(PolicyBlockedError):
        agent.generate_reply(messages=ASK)
    spans = exporter.get_finished_spans()
    assert {s.name.split(" ")[0] for s in spans} == {"invoke_agent", "check_tool"}
    assert_no_card(spans)
    (check,) = [s for s in spans if s.name.startswith("check_tool")]
    assert check.attributes["gen_ai.tool.name"] == "delete_records [CREDIT_CARD]"
    (event,) = [e for e in check.events if e.name == "execlave.policy.violation"]
    # (the policy engine may already give the violation a masked, normalised form of the name)
    assert event.attributes["execlave.violation.tool_name"].endswith("[CREDIT_CARD]")


def test_megabyte_tool_names_become_bounded_span_data(make_exe, exporter):
    exe = make_exe()
    allowed, denied = "get_" + "B" * MIB, "drop_" + "A" * MIB
    agent = assistant(exe, scripted(calls(allowed, denied)))
    with pytest.raises(PolicyBlockedError):
        agent.generate_reply(messages=ASK)
    spans = exporter.get_finished_spans()
    assert len(spans) == 3
    assert len(exported(spans)) < 64 * 1024  # was ~9 MiB
    for span in spans:
        assert len(span.name) <= len("check_tool ") + MAX_NAME_CHARS
        for value in span.attributes.values():
            assert len(str(value)) <= MAX_MESSAGE_CHARS
        for event in span.events:
            for value in event.attributes.values():
                assert len(str(value)) <= MAX_MESSAGE_CHARS
        assert len(span.status.description or "") <= MAX_MESSAGE_CHARS
    # too long to mask whole at export time: only the length leaves
    names = {s.attributes.get("gen_ai.tool.name") for s in spans} - {None}
    assert names == {f"[{len(allowed)} characters omitted]", f"[{len(denied)} characters omitted]"}


def test_long_tool_names_keep_a_bounded_prefix(make_exe, exporter):
    exe = make_exe()
    agent = assistant(exe, scripted(calls("drop_" + "A" * 10_000)))
    with pytest.raises(PolicyBlockedError):
        agent.generate_reply(messages=ASK)
    (check,) = [s for s in exporter.get_finished_spans() if s.name.startswith("check_tool")]
    name = check.attributes["gen_ai.tool.name"]
    assert name.startswith("drop_AAA") and name.endswith("[truncated]") and len(name) == MAX_NAME_CHARS
    assert check.name == f"check_tool {name}"


def test_control_characters_in_tool_names_are_escaped_in_spans(make_exe, exporter):
    exe = make_exe()
    agent = assistant(exe, scripted(calls("drop_x\n\x1b[8m\u202ehidden")))
    with pytest.raises(PolicyBlockedError):
        agent.generate_reply(messages=ASK)
    (check,) = [s for s in exporter.get_finished_spans() if s.name.startswith("check_tool")]
    assert check.name == "check_tool drop_x\\x0a\\x1b[8m\\u202ehidden"
    assert check.attributes["gen_ai.tool.name"] == "drop_x\\x0a\\x1b[8m\\u202ehidden"


def test_block_raised_in_a_governed_span_carries_bounded_masked_names(make_exe, exporter):
    exe = make_exe()
    name = f"drop {CARD} " + "Z" * MIB
    violation = {
        "policyId": "deny-destructive",
        "policyType": "tool_invocation",
        "enforcementMode": "block",
        "message": f"tool {name!r} is on the deny list",
        "target": "tool_call",
        "toolName": name,
    }
    from execlave.policy.types import Decision

    with (
        pytest.raises(PolicyBlockedError) as info,
        exe._telemetry.governed_span("execute_tool x", check=lambda: Decision("block", (violation,))),
    ):
        pass
    (v,) = info.value.violations
    assert len(v["toolName"]) <= MAX_NAME_CHARS and len(v["message"]) <= MAX_MESSAGE_CHARS
    assert CARD not in str(info.value) and len(str(info.value)) < 4 * MAX_MESSAGE_CHARS
    assert_no_card(exporter.get_finished_spans())


# -- exceptions ---------------------------------------------------------------------------------


def test_exception_from_the_reply_function_is_recorded_masked_and_bounded(make_exe, exporter):
    pydantic = require("pydantic")

    class Order(pydantic.BaseModel):
        quantity: int

    def reply(recipient: Any, messages: Any = None, sender: Any = None, config: Any = None) -> Any:
        Order(quantity=f"order for card {CARD}")  # raises ValidationError quoting input_value
        return True, "never"

    exe = make_exe()
    agent = assistant(exe, reply)
    with pytest.raises(pydantic.ValidationError):
        agent.generate_reply(messages=ASK)
    (span,) = exporter.get_finished_spans()
    assert_no_card([span])
    (event,) = [e for e in span.events if e.name == "exception"]
    assert event.attributes["exception.type"].endswith("ValidationError")
    assert "[CREDIT_CARD]" in event.attributes["exception.message"]
    assert "[CREDIT_CARD]" in span.status.description


def test_huge_exception_message_is_bounded(make_exe, exporter):
    def reply(recipient: Any, messages: Any = None, sender: Any = None, config: Any = None) -> Any:
        raise ValueError("bad value: " + "Q" * (8 * MIB))

    exe = make_exe()
    agent = assistant(exe, reply)
    with pytest.raises(ValueError):
        agent.generate_reply(messages=ASK)
    (span,) = exporter.get_finished_spans()
    assert len(exported([span])) < 64 * 1024


# -- console ------------------------------------------------------------------------------------


def test_console_tree_escapes_control_characters(make_exe, capsys):
    exe = make_exe(tracer_provider=TracerProvider(), console=True)
    forged = "drop_x\n  invoke_agent forged  0.1 ms  decision=allow\x1b[8m\x1b]52;c;ZXZpbA==\x07\r"
    agent = assistant(exe, scripted(calls(forged)))
    with pytest.raises(PolicyBlockedError):
        agent.generate_reply(messages=ASK)
    out = capsys.readouterr().out
    assert not any(ch in out for ch in "\x1b\x07\r\u202e")
    lines = out.splitlines()
    # the round, the check_tool span and its violation line: nothing forged on a line of its own
    assert len(lines) == 3, lines
    assert not any(line.lstrip().startswith("invoke_agent forged") for line in lines)


# -- captured content ---------------------------------------------------------------------------


def test_captured_tool_result_is_capped_on_the_apps_provider(make_exe, exporter):
    autogen = require("autogen")
    exe = make_exe(capture_content=True)
    big = f"{CARD} " + "R" * (10 * MIB)
    executor = autogen.ConversableAgent(
        "executor",
        llm_config=False,
        human_input_mode="NEVER",
        code_execution_config=False,
        function_map={"fetch": lambda: big},
    )
    from execlave.integrations.autogen import instrument_autogen_agent

    instrument_autogen_agent(executor, exe, agent_id="executor")
    executor.execute_function({"name": "fetch", "arguments": json.dumps({})})
    (span,) = [s for s in exporter.get_finished_spans() if s.name.startswith("execute_tool")]
    result = span.attributes["gen_ai.tool.call.result"]
    assert result.startswith("[CREDIT_CARD] RRR")
    assert len(result) <= exe._telemetry.max_attribute_length
    assert result.endswith("[truncated]")


def test_own_provider_caps_every_attribute_with_otel_span_limits(no_global_provider, monkeypatch):
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "1000")
    exe = Execlave(policies=load_policies([TOOL_DENY]))
    assert exe._telemetry.max_attribute_length == 1000
    try:
        exporter = InMemorySpanExporter()
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        exe._telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        with exe._telemetry.tracer.start_as_current_span("x", attributes={"big": "b" * 5000}) as span:
            span.add_event("e", {"big": "e" * 5000})
        (span,) = exporter.get_finished_spans()
        assert len(span.attributes["big"]) == 1000
        assert len(span.events[0].attributes["big"]) == 1000
    finally:
        exe.shutdown(1.0)


def test_every_non_printable_character_is_escaped():
    from execlave.telemetry.bounds import escape_controls

    hidden = "a\u00adb\U000e0041c\u3000d\ufeffe\x9bf\u2028g"  # soft hyphen, tag, wide space, BOM, CSI, LS
    assert escape_controls(hidden) == "a\\xadb\\U000e0041c\\u3000d\\ufeffe\\x9bf\\u2028g"
    assert escape_controls("plain name-1.2 ok") == "plain name-1.2 ok"


def test_metric_attributes_carry_bounded_tool_names(make_exe):
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    exe = make_exe(meter_provider=MeterProvider(metric_readers=[reader]))
    agent = assistant(exe, scripted(calls(f"drop_x {CARD} " + "A" * 10_000)))
    with pytest.raises(PolicyBlockedError):
        agent.generate_reply(messages=ASK)
    data = reader.get_metrics_data()
    values = [
        str(v)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        for p in m.data.data_points
        for v in (p.attributes or {}).values()
    ]
    assert values and all(len(v) <= MAX_MESSAGE_CHARS for v in values)
    assert not any(CARD in v or CARD_DIGITS in v for v in values)
    assert any(v.startswith("drop") and len(v) <= MAX_NAME_CHARS for v in values), values
