"""Policy-engine cost per check, by input size.

    python benchmarks/policy_engine.py [--repeat N]

Evaluates one CheckRequest (an input plus one tool call with arguments) against the bundled
baseline switched to block mode plus the example ops policies, and prints p50 / p99 per size
and the ratio to the goal. Goals: p50 <= 20 us at 2 KB, p50 <= 1 ms at 100 KB. Figures come from
one run on this machine; compare ratios, not absolute numbers, across machines.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from execlave.policy import CheckRequest, PolicyEngine, ToolCall, baseline_policies, load_policies

ROOT = Path(__file__).resolve().parents[1]
GOALS_US = {2_000: 20.0, 100_000: 1_000.0}
SENTENCE = "Please check the deployment status of the payments service in eu-west and summarise the errors. "
UNICODE_SENTENCE = "Prüfe den Status des Dienstes „payments“ — Fehler zusammenfassen. "


def policies() -> list:
    enforced = [p.model_copy(update={"enforcement_mode": "block"}) for p in baseline_policies()]
    ops = ROOT / "examples" / "policies" / "ops.yaml"
    return enforced + (load_policies(ops) if ops.exists() else [])


def text_of(size: int, sentence: str) -> str:
    return (sentence * (size // len(sentence) + 1))[:size]


def measure(engine: PolicyEngine, request: CheckRequest, repeat: int) -> list[float]:
    for _ in range(min(200, repeat)):
        engine.evaluate(request)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        engine.evaluate(request)
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3000)
    args = parser.parse_args()
    engine = PolicyEngine(policies())
    print(f"{len(engine.policies)} policies (baseline in block mode + ops.yaml); repeat={args.repeat}\n")
    print(f"{'input':<18}{'p50 µs':>10}{'p99 µs':>10}{'goal p50 µs':>13}{'p50/goal':>10}")
    for label, sentence in (("ascii", SENTENCE), ("non-ascii", UNICODE_SENTENCE)):
        for size in (200, 2_000, 100_000):
            request = CheckRequest(
                "ops-assistant",
                input=text_of(size, sentence),
                tool_calls=(ToolCall("search_logs", {"service": "payments", "query": "error"}),),
            )
            repeat = args.repeat if size < 100_000 else max(50, args.repeat // 20)
            samples = sorted(measure(engine, request, repeat))
            assert not engine.evaluate(request).violations, "benchmark input must be benign"
            p50 = statistics.median(samples)
            p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
            goal = GOALS_US.get(size)
            ratio = f"{p50 / goal:.2f}" if goal else "-"
            print(f"{label + ' ' + str(size) + ' B':<18}{p50:>10.1f}{p99:>10.1f}{goal or '-':>13}{ratio:>10}")


if __name__ == "__main__":
    main()
