"""AgentChat quickstart (autogen-agentchat 0.4-0.7, or `pip install pyautogen` 0.10), offline.

An AssistantAgent on autogen-ext's ReplayChatCompletionClient (scripted model: no key, no
network) makes one allowed tool call that really runs, then asks for a destructive one that is
blocked before it runs. Prints the violations and the spans.

    pip install execlave-sdk autogen-agentchat autogen-ext
    python examples/agentchat_quickstart.py
"""

from __future__ import annotations

import asyncio

from autogen_agentchat.agents import AssistantAgent
from autogen_core import FunctionCall
from autogen_core.models import CreateResult, RequestUsage
from autogen_ext.models.replay import ReplayChatCompletionClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from execlave import Execlave
from execlave.errors import PolicyBlockedError
from execlave.integrations.autogen import instrument_autogen_agent

POLICIES = [
    {
        "id": "ops-no-destructive-tools",
        "name": "No destructive tools",
        "policyType": "tool_invocation",
        "enforcementMode": "block",
        "ruleDefinition": {"deny": ["delete_*", "drop_*"]},
    }
]


def call(call_id: str, name: str, arguments: str) -> CreateResult:
    usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
    content = [FunctionCall(id=call_id, name=name, arguments=arguments)]
    return CreateResult(finish_reason="function_calls", content=content, usage=usage, cached=False)


def scripted_model() -> ReplayChatCompletionClient:
    responses = [
        call("c1", "get_status", '{"service": "db"}'),
        "The database is healthy.",
        call("c2", "delete_db", '{"name": "prod"}'),
    ]
    info = {
        "vision": False,
        "function_calling": True,
        "json_output": False,
        "family": "unknown",
        "structured_output": False,
    }
    try:
        return ReplayChatCompletionClient(responses, model_info=info)  # type: ignore[arg-type]
    except TypeError:  # autogen-ext 0.4.x has no model_info argument
        client = ReplayChatCompletionClient(responses)
        client._model_info = info  # type: ignore[assignment]
        return client


executed: list[str] = []


async def get_status(service: str) -> str:
    """Return a service's status."""
    executed.append(f"get_status({service})")
    return f"{service}: healthy"


async def delete_db(name: str) -> str:
    """Delete a database."""
    executed.append(f"delete_db({name})")
    return "deleted"


async def main() -> None:
    exporter = InMemorySpanExporter()  # use otlp_endpoint= / OTEL_EXPORTER_OTLP_ENDPOINT in real life
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    exe = Execlave(policies=POLICIES, tracer_provider=provider)

    agent = AssistantAgent(
        "ops", model_client=scripted_model(), tools=[get_status, delete_db], reflect_on_tool_use=True
    )
    instrument_autogen_agent(agent, exe, agent_id="ops-assistant")

    result = await agent.run(task="How is the database?")
    print("reply:", result.messages[-1].content)
    try:
        await agent.run(task="Now delete the prod database.")
    except PolicyBlockedError as exc:
        for v in exc.violations:
            print(f"blocked: {v['policyId']} on {v.get('toolName')}: {v['message']}")
    print("tools executed:", executed)

    exe.flush()
    for span in sorted(exporter.get_finished_spans(), key=lambda s: s.start_time or 0):
        indent = "  " if span.parent is not None else ""
        decision = span.attributes.get("execlave.policy.decision")
        print(f"{indent}{span.name}  decision={decision}  status={span.status.status_code.name}")
    exe.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
