"""Instruction counts (callgrind ``Ir``) for one call of the policy engine's pieces: the engine's
fixed per-request cost without timing noise.

    python benchmarks/callgrind_engine.py [--out DIR]

Re-executes itself under ``valgrind --tool=callgrind --instr-atstart=no`` with
``PYTHONHASHSEED=0``; inside, each piece is warmed up (50 calls), the cyclic GC is turned off,
then three times ``CALLGRIND_ZERO_STATS`` / one call / ``CALLGRIND_DUMP_STATS_AT(label)`` (the
median is reported, minus the cost of the two shim calls alone). The policy set is the one
``policy_engine.py`` times (the bundled baseline in block mode + a 6-tool allowlist).
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _bench import ExecutionCounter  # noqa: E402

SAMPLES = 3
SHORT = "Please check the deployment status of eu-west."  # 45 characters, like one chat message


def pieces() -> dict[str, Callable[[], object]]:
    from policy_engine import SENTENCE, UNICODE_SENTENCE, policies, text_of

    from execlave.policy import CheckRequest, PolicyEngine, ToolCall
    from execlave.policy.normalize import normalize_text

    engine = PolicyEngine(policies())
    call = ToolCall("search_logs", {"service": "payments", "query": "error"})
    text_request = CheckRequest("ops-assistant", input=SHORT, count_request=True)
    tool_request = CheckRequest("ops-assistant", tool_calls=(call,))
    both = CheckRequest("ops-assistant", input=SHORT, tool_calls=(call,))
    ascii_2k = CheckRequest("ops-assistant", input=text_of(2_000, SENTENCE), tool_calls=(call,))
    other_2k = CheckRequest("ops-assistant", input=text_of(2_000, UNICODE_SENTENCE), tool_calls=(call,))
    unicode_short = UNICODE_SENTENCE[:45]
    return {
        "normalize_text, 45 ASCII chars": lambda: normalize_text(SHORT),
        "normalize_text, 45 non-ASCII chars": lambda: normalize_text(unicode_short),
        "evaluate: input only (45 chars)": lambda: engine.evaluate(text_request),
        "evaluate: one tool call only": lambda: engine.evaluate(tool_request),
        "evaluate: input + tool call": lambda: engine.evaluate(both),
        "evaluate: ASCII 2 KB + tool call": lambda: engine.evaluate(ascii_2k),
        "evaluate: non-ASCII 2 KB + tool call": lambda: engine.evaluate(other_2k),
        "CheckRequest(input=...)": lambda: CheckRequest("ops-assistant", input=SHORT, count_request=True),
    }


def inner() -> int:
    counter = ExecutionCounter()
    work = pieces()
    counter.start()
    for label, fn in [("nothing", lambda: None), *work.items()]:
        for _ in range(50):
            fn()
        gc.collect()
        gc.disable()
        for i in range(SAMPLES):
            counter.zero()
            fn()
            counter.dump(f"{label}#{i}")
        gc.enable()
    return 0


def outer(args: argparse.Namespace) -> int:
    if shutil.which("valgrind") is None:
        print("valgrind is not installed", file=sys.stderr)
        return 1
    from callgrind_rounds import read_dumps, run_under_callgrind

    out = Path(args.out or tempfile.mkdtemp(prefix="cg-engine-"))
    out.mkdir(parents=True, exist_ok=True)
    proc = run_under_callgrind(Path(__file__), [], out)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        return proc.returncode
    found = read_dumps(out)
    base = found.get("nothing", (0, None))[0]
    print(f"{'piece':<42}{'Ir':>12}")
    for label, (total, _) in found.items():
        if label != "nothing":
            print(f"{label:<42}{total - base:>12,}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="directory for the callgrind files (default: a temporary one)")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    return inner() if args.inner else outer(args)


if __name__ == "__main__":
    raise SystemExit(main())
