"""Memory and export volume under hostile inputs, with execlave's telemetry bounds on and off.

    pip install -e . ag2==0.14.0 grpcio     # tests/support/otlp.py needs grpc
    PYTHONPATH=src:tests python benchmarks/resource_bounds.py [--results 100] [--result-mib 5] 2>/dev/null

(stderr carries the OTLP exporter's timeout warnings.) Each scenario runs in a fresh interpreter,
so its peak RSS (``ru_maxrss``) is its own; loops are bounded and every endpoint is on 127.0.0.1.
A real classic AutoGen (ag2 0.14) agent pair is governed by an ``Execlave`` client that owns its
tracer provider and exports to a local OTLP/HTTP endpoint.

- ``content``: content capture on, the collector a black hole (accepts, never answers); a tool
  returns ``--results`` results of ``--result-mib`` MiB each. Reports the peak RSS above the
  set-up baseline and the largest export queue (estimated bytes) seen.
- ``flood``: one reply requesting ``--calls`` harmless tool calls plus one denied call, the
  collector a black hole. Reports the spans the round produced, the spans dropped, and whether
  the denied call's span and the blocked round's span are still queued for export.
- ``names``: one reply with a 1 MiB allowed and a 1 MiB denied tool name, exported to a
  receiving collector. Reports the bytes the collector received.

``--bounds off`` runs the same scenarios with the bounds lifted (attribute length, queue and batch
bytes, per-round span budget set to effectively unlimited) for comparison. Never used as a timed
assertion in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
UNBOUNDED = {
    "max_attribute_length": 2**40,
    "max_queue_bytes": 2**50,
    "max_export_batch_bytes": 2**50,
    "max_tool_spans_per_round": 2**40,
}


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _client(endpoint: str, bounds: bool, **kwargs: Any) -> Any:
    import execlave.client
    from execlave import Execlave
    from execlave.policy import load_policies
    from execlave.telemetry import TelemetryConfig

    if not bounds:  # benchmark-only: the public client does not expose these knobs
        execlave.client.TelemetryConfig = functools.partial(TelemetryConfig, **UNBOUNDED)  # type: ignore[misc]
    deny = {
        "id": "deny-destructive",
        "policyType": "tool_invocation",
        "enforcementMode": "block",
        "ruleDefinition": {"deny": ["drop_*"]},
    }
    return Execlave(policies=load_policies([deny]), otlp_endpoint=endpoint, **kwargs)


def _agent(autogen: Any, name: str, **kwargs: Any) -> Any:
    return autogen.ConversableAgent(
        name, llm_config=False, human_input_mode="NEVER", code_execution_config=False, **kwargs
    )


def _processor(exe: Any) -> Any:
    return exe._telemetry._processors[0]


def scenario_content(args: argparse.Namespace, bounds: bool) -> dict[str, Any]:
    import autogen

    from execlave.integrations.autogen import instrument_autogen_agent
    from support.otlp import BlackHole

    size = int(args.result_mib * MIB)
    with BlackHole() as hole:
        exe = _client(hole.endpoint, bounds, capture_content=True)
        processor = _processor(exe)
        executor = _agent(autogen, "executor", function_map={"fetch": lambda i: f"{i} " + "r" * size})
        instrument_autogen_agent(executor, exe, agent_id="executor")
        baseline = _rss_mib()
        largest_queue = 0
        for i in range(args.results):
            executor.execute_function({"name": "fetch", "arguments": json.dumps({"i": i})})
            largest_queue = max(largest_queue, processor.queued_bytes)
        peak = _rss_mib()
        stats = exe.stats()
        exe.shutdown(0.5)
    return {
        "peak_rss_above_baseline_mib": round(peak - baseline, 1),
        "largest_queue_mib": round(largest_queue / MIB, 2),
        "spans_dropped_queue_full": stats["spans_dropped_queue_full"],
    }


def scenario_flood(args: argparse.Namespace, bounds: bool) -> dict[str, Any]:
    import autogen

    from execlave.errors import PolicyBlockedError
    from execlave.integrations.autogen import instrument_autogen_agent
    from support.otlp import BlackHole

    names = [f"get_status_{i}" for i in range(args.calls)] + ["drop_database"]
    reply = {
        "content": None,
        "tool_calls": [
            {"id": f"c{i}", "type": "function", "function": {"name": n, "arguments": "{}"}}
            for i, n in enumerate(names)
        ],
    }
    with BlackHole() as hole:
        exe = _client(hole.endpoint, bounds)
        processor = _processor(exe)
        agent = _agent(autogen, "assistant")
        agent.register_reply([autogen.Agent, None], lambda *a, **k: (True, reply), position=0)
        instrument_autogen_agent(agent, exe, agent_id="assistant")
        t0 = time.perf_counter()
        with contextlib.suppress(PolicyBlockedError):
            agent.generate_reply(messages=[{"role": "user", "content": "check everything"}])
        elapsed = time.perf_counter() - t0
        with processor._cond:
            held = [s.name for s, _ in [*processor._priority, *processor._queue]]
            in_flight = processor._in_flight
        stats = exe.stats()
        exe.shutdown(0.5)
    return {
        "round_seconds": round(elapsed, 2),
        "spans_produced": processor._enqueued + stats["spans_dropped_queue_full"],
        "spans_dropped_queue_full": stats["spans_dropped_queue_full"],
        "spans_queued_or_in_flight": len(held) + in_flight,
        "denied_call_span_kept": "check_tool drop_database" in held,
        "blocked_round_span_kept": "invoke_agent assistant" in held,
    }


def scenario_names(args: argparse.Namespace, bounds: bool) -> dict[str, Any]:
    import autogen

    from execlave.errors import PolicyBlockedError
    from execlave.integrations.autogen import instrument_autogen_agent
    from support.otlp import HttpReceiver

    names = ["get_" + "B" * MIB, "drop_" + "A" * MIB]
    reply = {
        "content": None,
        "tool_calls": [
            {"id": f"c{i}", "type": "function", "function": {"name": n, "arguments": "{}"}}
            for i, n in enumerate(names)
        ],
    }
    with HttpReceiver() as collector:
        exe = _client(collector.endpoint, bounds)
        agent = _agent(autogen, "assistant")
        agent.register_reply([autogen.Agent, None], lambda *a, **k: (True, reply), position=0)
        instrument_autogen_agent(agent, exe, agent_id="assistant")
        with contextlib.suppress(PolicyBlockedError):
            agent.generate_reply(messages=[{"role": "user", "content": "go"}])
        exe.flush(10.0)
        exe.shutdown(2.0)
        received = sum(len(r["raw"]) for r in collector.requests)
    return {"tool_name_mib": 1, "collector_received_kib": round(received / 1024, 1)}


SCENARIOS = {"content": scenario_content, "flood": scenario_flood, "names": scenario_names}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--results", type=int, default=100)
    parser.add_argument("--result-mib", type=float, default=5.0)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--bounds", choices=["on", "off", "both"], default="both")
    parser.add_argument("--only", choices=sorted(SCENARIOS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        scenario, bounds = args.child.split(":")
        print(json.dumps(SCENARIOS[scenario](args, bounds == "on")))
        return
    modes = ["on", "off"] if args.bounds == "both" else [args.bounds]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])}
    for scenario in [args.only] if args.only else list(SCENARIOS):
        for mode in modes:
            cmd = [sys.executable, __file__, "--child", f"{scenario}:{mode}"]
            cmd += [
                "--results",
                str(args.results),
                "--result-mib",
                str(args.result_mib),
                "--calls",
                str(args.calls),
            ]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            lines = out.stdout.strip().splitlines()
            result = json.loads(lines[-1]) if out.returncode == 0 and lines else {"error": out.stderr[-500:]}
            print(f"{scenario:8} bounds={mode:3} {json.dumps(result)}", flush=True)


if __name__ == "__main__":
    threading.excepthook = lambda a: None  # exporter threads abandoned at exit
    main()
