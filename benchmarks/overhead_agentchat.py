"""Per-turn overhead of governing an AgentChat AssistantAgent, from one run.

    python benchmarks/overhead_agentchat.py [--turns 1500] [--repeats 5]

Each turn: on_messages() with one user message; the scripted model (ReplayChatCompletionClient,
offline) requests one tool call, the tool runs, the model reflects on the result; then
on_reset(). Configurations, all in this process, same in-memory exporter: bare; execlave
(enforcement on: baseline + examples/policies/ops.yaml; an invoke_agent span with the input
check, a check_tool span, the tool-output scan); openinference-instrumentation-autogen-agentchat
if importable (it patches classes globally, so it is instrumented only around its own blocks).
Blocks are interleaved and the per-turn figure is the median over blocks; the heap is collected
and frozen (gc.freeze) before each block. Goal (issue 5):
execlave adds <= 60 µs per turn. Never used as a timed assertion in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from pathlib import Path
from typing import Any

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import TextMessage
from autogen_core import CancellationToken, FunctionCall
from autogen_core.models import CreateResult, RequestUsage
from autogen_ext.models.replay import ReplayChatCompletionClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from execlave import Execlave
from execlave.integrations.autogen.agentchat import instrument_agentchat_agent
from execlave.policy import baseline_policies, load_policies

ROOT = Path(__file__).resolve().parents[1]
INFO = {
    "vision": False,
    "function_calling": True,
    "json_output": False,
    "family": "unknown",
    "structured_output": False,
}
CALL = CreateResult(
    finish_reason="function_calls",
    content=[FunctionCall(id="c1", name="get_status", arguments='{"service": "db"}')],
    usage=RequestUsage(prompt_tokens=0, completion_tokens=0),
    cached=False,
)


async def get_status(service: str) -> str:
    """Return a service's status."""
    return f"{service}: healthy"


def make_agent(turns: int) -> AssistantAgent:
    responses: list[Any] = [CALL, "The database is healthy."] * turns
    try:
        client = ReplayChatCompletionClient(responses, model_info=INFO)  # type: ignore[arg-type]
    except TypeError:
        client = ReplayChatCompletionClient(responses)
        client._model_info = INFO  # type: ignore[assignment]
    return AssistantAgent("ops", model_client=client, tools=[get_status], reflect_on_tool_use=True)


async def block(
    agent: AssistantAgent, turns: int, exporter: InMemorySpanExporter, *, no_gc: bool = False
) -> float:
    # autogen-agentchat keeps per-turn objects alive (the heap grows with turns in every
    # configuration); freeze what exists so full collections do not rescan it and skew later blocks.
    gc.collect()
    gc.freeze()
    token = CancellationToken()
    message = [TextMessage(content="How is the database?", source="user")]
    if no_gc:
        gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(turns):
            await agent.on_messages(message, token)
            await agent.on_reset(token)
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    exporter.clear()
    return elapsed / turns * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--no-gc",
        action="store_true",
        help="disable the cyclic GC inside timed blocks (isolates GC pressure)",
    )
    args = parser.parse_args()

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    policies = [*baseline_policies(), *load_policies(ROOT / "examples/policies/ops.yaml")]
    exe = Execlave(policies=policies, tracer_provider=provider)

    try:
        from openinference.instrumentation.autogen_agentchat import AutogenAgentChatInstrumentor

        oi: Any = AutogenAgentChatInstrumentor()
    except ImportError:
        oi = None

    total = args.turns * (args.repeats + 1)
    bare = make_agent(total)
    governed = instrument_agentchat_agent(make_agent(total), exe, agent_id="ops-assistant")
    other = make_agent(total) if oi is not None else None

    results: dict[str, list[float]] = {"bare": [], "execlave": [], "openinference": []}
    for repeat in range(args.repeats + 1):  # the first round warms up and is discarded
        timings = {"bare": await block(bare, args.turns, exporter, no_gc=args.no_gc)}
        timings["execlave"] = await block(governed, args.turns, exporter, no_gc=args.no_gc)
        if oi is not None and other is not None:
            oi.instrument(tracer_provider=provider)
            try:
                timings["openinference"] = await block(other, args.turns, exporter, no_gc=args.no_gc)
            finally:
                oi.uninstrument()
        if repeat:
            for name, value in timings.items():
                results[name].append(value)

    base = statistics.median(results["bare"])
    print(
        "AgentChat per-turn overhead (one tool call + reflection), "
        f"{args.turns} turns x {args.repeats} blocks"
    )
    print(f"{'configuration':<16}{'µs/turn':>10}{'added µs':>10}{'ratio':>8}")
    added: dict[str, float] = {}
    for name, values in results.items():
        if not values:
            print(f"{name:<16}{'n/a (not installed)':>28}")
            continue
        median = statistics.median(values)
        added[name] = median - base
        print(f"{name:<16}{median:>10.1f}{median - base:>10.1f}{median / base:>8.3f}")
    if "openinference" in added and added["openinference"] > 0:
        print(f"execlave added / openinference added: {added['execlave'] / added['openinference']:.2f}")
    print(f"goal: execlave adds <= 60 µs per turn -> {'met' if added['execlave'] <= 60 else 'NOT met'}")
    exe.shutdown(timeout=1.0)


if __name__ == "__main__":
    asyncio.run(main())
