"""Per-round overhead of governing a classic AutoGen agent, from one run.

    PYTHONPATH=src python benchmarks/overhead_classic.py [--rounds 3000]

An agent (llm_config=False) answers every generate_reply with a scripted reply holding one tool
call; history of 1 and 20 messages. Configurations, all in this process, same in-memory exporter:
bare; execlave (enforcement on: baseline + examples/policies/ops.yaml; one invoke_agent span
with its check plus one check_tool span per round); openinference-instrumentation-ag2 if it is
importable (it patches ConversableAgent globally, so it runs last). Prints µs per round and
overhead ratios. Goal (issue 4): execlave adds <= 25 µs per round, flat in history length, and
<= 0.3 x OpenInference's overhead. Never used as a timed assertion in tests.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autogen import Agent, ConversableAgent
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider

from execlave import Execlave
from execlave.integrations.autogen import instrument_autogen_agent, uninstrument_autogen_agent
from execlave.policy import baseline_policies, load_policies

ROOT = Path(__file__).resolve().parents[1]
REPLY = {
    "content": None,
    "tool_calls": [
        {
            "id": "c1",
            "type": "function",
            "function": {"name": "get_status", "arguments": json.dumps({"h": "web-1"})},
        }
    ],
}


def scripted(recipient: Any, messages: Any = None, sender: Any = None, config: Any = None) -> Any:
    return True, REPLY


def history(n: int) -> list[dict[str, Any]]:
    turns = [
        {"role": "user", "content": f"question {i}: how is web-{i} doing? please check the status"}
        if i % 2 == 0
        else {"role": "assistant", "content": f"web-{i} looks fine, load is {i}%"}
        for i in range(n - 1)
    ]
    return [*turns, {"role": "user", "content": "check the status of web-1 and report back"}]


def new_agent() -> ConversableAgent:
    agent = ConversableAgent("ops_assistant", llm_config=False, human_input_mode="NEVER")
    agent.register_reply([Agent, None], scripted, position=0)
    return agent


def per_round_us(fn: Callable[[], Any], rounds: int, repeats: int = 5) -> float:
    for _ in range(min(rounds, 200)):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(rounds):
            fn()
        samples.append((time.perf_counter() - start) / rounds * 1e6)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3000)
    args = parser.parse_args()

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    policies = [*baseline_policies(), *load_policies(ROOT / "examples" / "policies" / "ops.yaml")]
    exe = Execlave(policies=policies, tracer_provider=provider)

    sizes = (1, 20)
    results: dict[str, dict[int, float]] = {"bare": {}, "execlave": {}}
    agent = new_agent()
    for n in sizes:
        msgs = history(n)
        results["bare"][n] = per_round_us(lambda m=msgs: agent.generate_reply(messages=m), args.rounds)
    instrument_autogen_agent(agent, exe, agent_id="ops-assistant")
    for n in sizes:
        msgs = history(n)
        results["execlave"][n] = per_round_us(lambda m=msgs: agent.generate_reply(messages=m), args.rounds)
        exporter.clear()
    uninstrument_autogen_agent(agent)

    # Enforcement alone: the same checks with a no-op tracer provider (no spans recorded).
    quiet = Execlave(policies=policies, tracer_provider=NoOpTracerProvider())
    results["enforce-only"] = {}
    instrument_autogen_agent(agent, quiet, agent_id="ops-assistant")
    for n in sizes:
        msgs = history(n)
        results["enforce-only"][n] = per_round_us(
            lambda m=msgs: agent.generate_reply(messages=m), args.rounds
        )
    uninstrument_autogen_agent(agent)

    try:
        from openinference.instrumentation.ag2 import AG2Instrumentor
    except ImportError:
        AG2Instrumentor = None
    if AG2Instrumentor is not None:
        instrumentor = AG2Instrumentor()
        instrumentor.instrument(tracer_provider=provider)
        oi_agent = new_agent()
        results["openinference"] = {}
        for n in sizes:
            msgs = history(n)
            results["openinference"][n] = per_round_us(
                lambda m=msgs: oi_agent.generate_reply(messages=m), args.rounds
            )
            exporter.clear()
        instrumentor.uninstrument()

    import autogen

    print(f"autogen {autogen.__version__}, python {sys.version.split()[0]}, {args.rounds} rounds x 5, median")
    header = [
        "history",
        "bare µs",
        "+execlave µs",
        "+enforce-only µs",
        "+OI µs",
        "execlave/bare",
        "+execlave/+OI",
    ]
    print(" | ".join(header))
    for n in sizes:
        bare = results["bare"][n]
        ex = results["execlave"][n] - bare
        enforce = results["enforce-only"][n] - bare
        oi_total = results.get("openinference", {}).get(n)
        oi = None if oi_total is None else oi_total - bare
        row = [
            str(n),
            f"{bare:.1f}",
            f"{ex:.1f}",
            f"{enforce:.1f}",
            "n/a" if oi is None else f"{oi:.1f}",
            f"{results['execlave'][n] / bare:.2f}",
            "n/a" if not oi or oi <= 0 else f"{ex / oi:.2f}",
        ]
        print(" | ".join(f"{cell:>{len(h)}}" for cell, h in zip(row, header, strict=True)))
    quiet.shutdown(timeout=1.0)
    exe.shutdown(timeout=1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
