"""The API key never leaves through anything but the Authorization header to Execlave: not in an
exported span, resource or event (decoded protobuf), not in the raw bytes sent to the collector
or to Execlave, not in repr(exe), not in the text of any exception an agent sees. Log lines are
covered for the whole suite by tests/conftest.py."""

from __future__ import annotations

import asyncio
import json
import traceback
from typing import Any

import pytest

from execlave import Execlave
from execlave.errors import EnforcementUnavailableError, PolicyBlockedError
from execlave.integrations.autogen import instrument_autogen_agent
from support.adversarial import INPUTS, POLICIES_FILE
from support.execlave_api import ExeclaveAPI
from support.otlp import HttpReceiver
from support.requires import require
from support.secrets import HARDENING_KEY as KEY

from .conftest import raise_in_engine


def classic_rounds(exe: Execlave, monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    autogen = require("autogen")
    errors: list[BaseException] = []
    ran: list[str] = []

    def pair(*replies: Any) -> tuple[Any, Any]:
        queue = list(replies)

        def scripted(recipient: Any, messages: Any = None, sender: Any = None, config: Any = None) -> Any:
            return True, (queue.pop(0) if queue else "TERMINATE")

        assistant = autogen.ConversableAgent(
            "assistant", llm_config=False, human_input_mode="NEVER", code_execution_config=False
        )
        assistant.register_reply([autogen.Agent, None], scripted, position=0)
        executor = autogen.ConversableAgent(
            "executor",
            llm_config=False,
            human_input_mode="NEVER",
            code_execution_config=False,
            function_map={"get_status": lambda service: ran.append(service) or "healthy"},
            max_consecutive_auto_reply=2,
            default_auto_reply="TERMINATE",
        )
        instrument_autogen_agent(assistant, exe, agent_id="assistant", session_id="s-1", user_id="u-1")
        instrument_autogen_agent(executor, exe, agent_id="executor", session_id="s-1", user_id="u-1")
        return executor, assistant

    def call(name: str) -> dict[str, Any]:
        args = json.dumps({"service": "db"})
        return {
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": name, "arguments": args}}],
        }

    executor, assistant = pair(call("get_status"), "db is healthy")
    executor.initiate_chat(assistant, message="How is the db?", max_turns=2, silent=True)
    assert ran == ["db"]
    for message, reply in ((INPUTS["injection"][0], "never"), ("Drop it.", call("drop_table"))):
        executor, assistant = pair(reply)
        try:
            asyncio.run(executor.a_initiate_chat(assistant, message=message, max_turns=2, silent=True))
        except PolicyBlockedError as exc:
            errors.append(exc)
    with monkeypatch.context() as m:
        raise_in_engine(exe, m, ZeroDivisionError, only_tool_calls=False)
        executor, assistant = pair("never")
        try:
            executor.initiate_chat(assistant, message="hello", max_turns=1, silent=True)
        except EnforcementUnavailableError as exc:
            errors.append(exc)
    return errors


def agentchat_rounds(exe: Execlave, monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    require("autogen_agentchat")
    from autogen_agentchat.agents import AssistantAgent

    from agentchat.conftest import replay_client, tool_calls

    errors: list[BaseException] = []

    async def get_status(service: str) -> str:
        """Status of a service."""
        return "healthy"

    def agent(*responses: Any) -> Any:
        a = AssistantAgent("ops", model_client=replay_client(list(responses)), tools=[get_status])
        return instrument_autogen_agent(a, exe, agent_id="ops-assistant", session_id="s-1", user_id="u-1")

    async def main() -> None:
        await agent(tool_calls(("c1", "get_status", '{"service": "db"}')), "db is healthy").run(
            task="How is the db?"
        )
        for task, reply in (
            (INPUTS["injection"][0], "never"),
            ("Drop it.", tool_calls(("c2", "drop_table", "{}"))),
        ):
            try:
                await agent(reply).run(task=task)
            except PolicyBlockedError as exc:
                errors.append(exc)
        with monkeypatch.context() as m:
            raise_in_engine(exe, m, ZeroDivisionError, only_tool_calls=False)
            try:
                await agent("never").run(task="hello")
            except EnforcementUnavailableError as exc:
                errors.append(exc)

    asyncio.run(main())
    return errors


def exception_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + repr(getattr(exc, "violations", ""))


@pytest.mark.parametrize("framework", ["classic", "agentchat"])
def test_api_key_only_in_the_execlave_authorization_header(
    framework: str, no_global_provider: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    require("autogen" if framework == "classic" else "autogen_agentchat")
    with HttpReceiver() as collector, ExeclaveAPI(api_key=KEY) as execlave_api:
        monkeypatch.setenv("EXECLAVE_API_KEY", KEY)
        monkeypatch.setenv("EXECLAVE_BASE_URL", execlave_api.base_url)
        exe = Execlave(
            policies=POLICIES_FILE, otlp_endpoint=collector.endpoint, capture_content=True, service_name="svc"
        )
        try:
            errors = (classic_rounds if framework == "classic" else agentchat_rounds)(exe, monkeypatch)
            assert [type(e) for e in errors] == [
                PolicyBlockedError,
                PolicyBlockedError,
                EnforcementUnavailableError,
            ]
            assert exe.flush(10.0) is True
            texts = [repr(exe), str(vars(exe)), repr(exe._telemetry), str(exe.stats())]
        finally:
            exe.shutdown(2.0)
        collector_spans = collector.spans
        execlave_records = list(execlave_api.traces)
    names = {s.name for s in collector_spans}
    assert {r["metadata"]["spanName"] for r in execlave_records} == names
    assert KEY not in json.dumps(execlave_records)
    assert any(n.startswith("check_tool") for n in names) and any(n.startswith("invoke_agent") for n in names)
    for span in collector_spans:
        decoded = repr((span.name, span.attributes, span.resource, span.events))
        assert KEY not in decoded, span.name
    assert any(e[0] == "execlave.policy.violation" for s in collector_spans for e in s.events)
    for request in collector.requests:
        assert request["headers"].get("content-encoding", "identity") == "identity"  # raw bytes are plain
    for request in collector.requests:
        assert KEY.encode() not in request["raw"]
        assert all(KEY not in v for v in request["headers"].values())
    assert execlave_api.calls("enforce") and execlave_api.calls("ingest") and not execlave_api.unknown
    for call in execlave_api.requests:
        assert KEY not in json.dumps(call.body)
        carriers = {k.lower() for k, v in call.headers.items() if KEY in v}
        assert carriers == {"authorization"}
        assert call.headers["Authorization"] == f"Bearer {KEY}"
    for text in [*texts, *(exception_text(e) for e in errors)]:
        assert KEY not in text


def test_api_key_put_into_recorded_texts_by_the_app_or_model_is_never_exported(
    no_global_provider: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key reaches no exported byte even when it is in a text execlave records: an exception
    message, a tool name chosen by the model, a tool result (content capture on)."""
    autogen = require("autogen")
    with HttpReceiver() as collector, ExeclaveAPI(api_key=KEY) as execlave_api:
        monkeypatch.setenv("EXECLAVE_API_KEY", KEY)
        exe = Execlave(
            policies=POLICIES_FILE,
            base_url=execlave_api.base_url,
            otlp_endpoint=collector.endpoint,
            capture_content=True,
        )
        try:

            def leaky(recipient: Any, messages: Any = None, sender: Any = None, config: Any = None) -> Any:
                raise ValueError(f"could not call the API with {KEY}")

            def named(recipient: Any, messages: Any = None, sender: Any = None, config: Any = None) -> Any:
                function = {"name": f"drop_{KEY}", "arguments": "{}"}
                call = {"id": "c1", "type": "function", "function": function}
                return True, {"content": None, "tool_calls": [call]}

            rounds = (("leaky", leaky, ValueError), ("named", named, PolicyBlockedError))
            for agent_id, reply, error in rounds:
                agent = autogen.ConversableAgent(
                    agent_id, llm_config=False, human_input_mode="NEVER", code_execution_config=False
                )
                agent.register_reply([autogen.Agent, None], reply, position=0)
                instrument_autogen_agent(agent, exe, agent_id=agent_id)
                with pytest.raises(error):
                    agent.generate_reply(messages=[{"role": "user", "content": "go"}])
            executor = autogen.ConversableAgent(
                "executor",
                llm_config=False,
                human_input_mode="NEVER",
                code_execution_config=False,
                function_map={"whoami": lambda: f"configured key: {KEY}"},
            )
            instrument_autogen_agent(executor, exe, agent_id="executor")
            executor.execute_function({"name": "whoami", "arguments": "{}"})
            assert exe.flush(10.0) is True
        finally:
            exe.shutdown(2.0)
        names = {s.name for s in collector.spans}
        assert {"invoke_agent leaky", "invoke_agent named", "execute_tool whoami"} <= names
        for request in collector.requests:
            assert KEY.encode() not in request["raw"]
        assert execlave_api.traces
        assert KEY not in json.dumps(execlave_api.traces)
        # (a check request may carry the text being checked, which here holds the key: that is the
        # decision's input, not telemetry)
