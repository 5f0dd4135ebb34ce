"""Instruction counts (callgrind ``Ir``) for ONE round of each configuration of the overhead
benchmarks: a change's cost without timing noise.

    .venv-bench/bin/python benchmarks/callgrind_rounds.py                 # classic (AG2 0.14)
    .venv-bench-ac/bin/python benchmarks/callgrind_rounds.py --line agentchat
    options: --rounds K (measured rounds per configuration, Ir divided by K; default 1)
             --warmup W (unmeasured rounds first; default 20) --processor simple|batch
             --annotate LABEL_SUBSTRING (callgrind_annotate these dumps; default: the enforce-only and
             full dumps of the tool round, history 1, simple processor) --out DIR

The script re-executes itself under ``valgrind --tool=callgrind --instr-atstart=no`` (imports
and set-up run uninstrumented), builds the same configurations as overhead_classic.py /
overhead_agentchat.py (and runs the same checks: spans recorded, probes blocked), then for each
configuration: W warm-up rounds, cyclic GC off, then three times ``CALLGRIND_ZERO_STATS``, K
rounds, ``CALLGRIND_DUMP_STATS_AT(label)`` (the median of the three is reported) -- client
requests made through a 4-line C shim (compiled with ``cc`` against valgrind's ``callgrind.h`` on
first use). Each dump file then holds exactly the measured rounds; the cost of the two shim
calls (the "nothing" dump) is subtracted. With ``PYTHONHASHSEED=0`` the counts repeat to within
a few hundred Ir from run to run.

Classic also gets component dumps (``component/...``): extraction from the messages, building a
CheckRequest, text normalisation, one governed span with a no-op tracer and with the SDK, the
same span as a plain SDK span, and recording a decision -- the pieces a round is made of
(they use execlave internals; a piece whose internals moved is reported as skipped).

Counts are the main thread's (``--separate-threads=yes``): the batch processor's worker thread
wakes on its own timer (5 s, often under valgrind's slowdown) and would land in random dumps; so
"batch" shows the enqueue on the calling thread, not the export (a do-nothing one here). The
cyclic GC is off in measured rounds: its cost (real, and larger on AgentChat's big heap) is in
the timing scripts, not here (see their ``--no-gc``).
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _bench import PROCESSORS, ExecutionCounter, ratio, table  # noqa: E402

DEFAULT_ANNOTATE = ("simple/tool/h1/enforce-only", "simple/tool/h1/full")
SAMPLES = 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--line", choices=("classic", "agentchat"), default="classic")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--processor", choices=PROCESSORS, action="append")
    p.add_argument("--annotate", action="append", help="label substring of dumps to annotate")
    p.add_argument("--out", help="directory for the callgrind files (default: a temporary one)")
    p.add_argument("--quick", action="store_true", help="one processor, few warm-ups (smoke test)")
    p.add_argument(
        "--only",
        action="append",
        help="measure only the configurations / components whose label contains this (repeatable; "
        "a cell's bare round is always kept)",
    )
    p.add_argument(
        "--calls",
        action="store_true",
        help="no valgrind: count Python function calls per round (cProfile) and list the "
        "most-called functions of the --annotate configurations (the first 30; env CALLS_TOP=N for more)",
    )
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# -- inside valgrind -------------------------------------------------------------------------------


def measure(
    counter: ExecutionCounter,
    label: str,
    run: Callable[[int], None],
    args: argparse.Namespace,
    before: Callable[[], None] | None = None,
    after: Callable[[], None] | None = None,
) -> None:
    """Warm up, then SAMPLES dumps of ``args.rounds`` rounds each (the report takes their median)."""
    if before is not None:
        before()
    try:
        run(args.warmup)
        gc.collect()
        gc.disable()
        for i in range(SAMPLES):
            counter.zero()
            run(args.rounds)
            counter.dump(f"{label}#{i}")
        gc.enable()
    finally:
        if after is not None:
            after()


def classic_components(counter: ExecutionCounter, args: argparse.Namespace) -> None:
    from _bench import Pipeline
    from opentelemetry.trace import NoOpTracerProvider
    from overhead_classic import AGENT_ID, TOOL_REPLY, history, policies

    from execlave import Execlave

    pipe = Pipeline("simple")
    full = Execlave(policies=policies(), tracer_provider=pipe.provider)
    quiet = Execlave(policies=policies(), tracer_provider=NoOpTracerProvider())
    msgs = history(20)
    attrs = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "ops_assistant",
        "gen_ai.agent.id": AGENT_ID,
    }
    decision_attrs = {
        "execlave.policy.decision": "allow",
        "execlave.policy.violation_count": 0,
        "execlave.policy.ids": [],
        "execlave.policy.set_version": 1,
    }
    tracer = pipe.provider.get_tracer("bench.floor")

    pieces: dict[str, Callable[[], Callable[[int], None]]] = {}

    def extraction() -> Callable[[int], None]:
        from execlave.integrations.autogen import _messages as m

        received = getattr(m, "received", None)  # newer adapters: input and tool results in one walk

        def run(n: int) -> None:
            for _ in range(n):
                if received is not None:
                    received(msgs)
                else:
                    m.last_user_input(msgs)  # type: ignore[attr-defined]
                    m.recent_tool_outputs(msgs)  # type: ignore[attr-defined]
                m.extract_tool_calls(msgs[-1])
                m.extract_tool_calls(TOOL_REPLY)

        return run

    def request() -> Callable[[int], None]:
        from execlave.policy import CheckRequest, ToolCall

        calls = (ToolCall("get_status", {"h": "web-1"}, "c1"),)

        def run(n: int) -> None:
            for _ in range(n):
                CheckRequest(
                    agent_id=AGENT_ID,
                    environment="production",
                    metadata=None,
                    input="check the status",
                    tool_calls=(),
                    tool_outputs=(),
                    count_request=True,
                )
                CheckRequest(agent_id=AGENT_ID, environment="production", metadata=None, tool_calls=calls)

        return run

    def normalise() -> Callable[[int], None]:
        from execlave.policy.normalize import normalize_text

        text = msgs[-1]["content"]

        def run(n: int) -> None:
            for _ in range(n):
                normalize_text(text)

        return run

    def span(client: Execlave) -> Callable[[], Callable[[int], None]]:
        def make() -> Callable[[int], None]:
            from execlave.adapter import AgentIdentity
            from execlave.policy.types import Decision

            decision = Decision("allow", policy_set_version=1)
            agent = AgentIdentity(AGENT_ID, name="ops_assistant")

            def run(n: int) -> None:
                for _ in range(n):
                    with client.round_span(agent, check=lambda: decision):
                        pass

            return run

        return make

    def plain_span() -> Callable[[int], None]:
        both = {**attrs, **decision_attrs}

        def run(n: int) -> None:
            for _ in range(n):
                with tracer.start_as_current_span("invoke_agent ops_assistant", attributes=both):
                    pass

        return run

    def record() -> Callable[[int], None]:
        from execlave.policy.types import Decision
        from execlave.telemetry.governed import record_decision

        decision = Decision("allow", policy_set_version=1)
        live = tracer.start_span("holder")

        def run(n: int) -> None:
            for _ in range(n):
                record_decision(live, decision)

        return run

    def governor(step: str) -> Callable[[], Callable[[int], None]]:
        def make() -> Callable[[int], None]:
            from overhead_classic import new_agent

            from execlave.integrations.autogen.classic import _ClassicGovernor

            gov = _ClassicGovernor(new_agent(TOOL_REPLY), quiet, AGENT_ID, None, None)
            short = history(1)
            if step == "round_request h1":
                return lambda n: [gov.round_request(short, None) for _ in range(n)] and None
            if step == "round_request h20":
                return lambda n: [gov.round_request(msgs, None) for _ in range(n)] and None
            if step == "reply tool calls":
                return lambda n: [gov.reply_calls(TOOL_REPLY) for _ in range(n)] and None
            calls = gov.reply_calls(TOOL_REPLY)
            return lambda n: [gov.check_requested(calls) for _ in range(n)] and None

        return make

    pieces["round_request h1 (extract + CheckRequest)"] = governor("round_request h1")
    pieces["round_request h20"] = governor("round_request h20")
    pieces["reply tool calls (extract + parse args)"] = governor("reply tool calls")
    pieces["check_requested 1 call (no-op tracer)"] = governor("check_requested")
    pieces["extract (history 20 + reply)"] = extraction
    pieces["CheckRequest x2"] = request
    pieces["normalize_text (1 msg)"] = normalise
    pieces["governed span, no-op tracer"] = span(quiet)
    pieces["governed span, SDK"] = span(full)
    pieces["plain SDK span, same attrs"] = plain_span
    pieces["record_decision"] = record
    for name, make in pieces.items():
        if args.only and not any(w in f"component/{name}" for w in args.only):
            continue
        try:
            run = make()
            run(1)
        except Exception as exc:  # internals moved: report, keep going
            print(f"component {name!r} skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        measure(counter, f"component/{name}", run, args)
    full.shutdown(timeout=1.0)


def _wanted(args: argparse.Namespace, label: str) -> bool:
    """``--only``: the labels containing one of its strings, and every cell's bare round."""
    return not args.only or label.endswith("/bare") or any(w in label for w in args.only)


def build_work(args: argparse.Namespace) -> list[tuple[str, Callable[[int], None], Any]]:
    processors = args.processor or (["simple"] if args.quick else list(PROCESSORS))
    work: list[tuple[str, Callable[[int], None], Any]] = []
    if args.line == "classic":
        import logging

        from overhead_classic import HISTORIES, ORDER, REPLIES, Setup, history

        logging.getLogger("autogen").setLevel(logging.ERROR)
        for processor in processors:
            for kind in REPLIES:
                setup = Setup(processor, kind)
                setup.check()
                for n in HISTORIES:
                    fns = setup.round_fns(history(n))
                    for c in ORDER:
                        if c in fns and _wanted(args, f"{processor}/{kind}/h{n}/{c}"):
                            work.append(
                                (
                                    f"{processor}/{kind}/h{n}/{c}",
                                    fns[c],
                                    setup if c == "openinference" else None,
                                )
                            )
    else:
        import asyncio
        import logging

        from overhead_agentchat import ORDER, SCRIPTS, Setup

        logging.getLogger("autogen_core").setLevel(logging.ERROR)
        loop = asyncio.new_event_loop()
        for processor in processors:
            for kind in SCRIPTS:
                setup = Setup(processor, kind, loop)
                setup.check()
                fns = setup.round_fns()
                for c in ORDER:
                    if c in fns and _wanted(args, f"{processor}/{kind}/h1/{c}"):
                        work.append(
                            (f"{processor}/{kind}/h1/{c}", fns[c], setup if c == "openinference" else None)
                        )
    return work


def python_calls(args: argparse.Namespace) -> int:
    """Python function calls per round, per configuration (deterministic), and the most-called
    functions added over bare for the --annotate configurations."""
    import cProfile
    import pstats

    work = build_work(args)
    wanted = args.annotate or list(DEFAULT_ANNOTATE)
    counts: dict[str, dict[str, int]] = {}
    for label, run, oi in work:
        name = label.rsplit("/", 1)[1]
        if oi is not None:
            oi.before(name)
        try:
            run(args.warmup)
            prof = cProfile.Profile()
            prof.enable()
            run(args.rounds)
            prof.disable()
        finally:
            if oi is not None:
                oi.after(name)
        stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
        counts[label] = {
            f"{Path(f).name}:{ln}({fn})": nc // args.rounds for (f, ln, fn), (_, nc, *_rest) in stats.items()
        }
    rows = []
    for label, per in counts.items():
        cell = label.rsplit("/", 1)[0]
        bare = sum(counts.get(cell + "/bare", {}).values())
        total = sum(per.values())
        rows.append([label, f"{total}", f"{total - bare:+d}"])
    print("Python-level calls per round (cProfile: Python functions and C builtins)")
    print(table(["configuration", "calls", "added"], rows))
    for label, per in counts.items():
        if not any(w in label for w in wanted):
            continue
        base = counts.get(label.rsplit("/", 1)[0] + "/bare", {})
        diff = sorted(
            ((v - base.get(k, 0), k) for k, v in per.items() if v - base.get(k, 0) > 0), reverse=True
        )
        print(f"\n== {label}: calls added over bare, most-called first ({sum(d for d, _ in diff)} in all)")
        for d, k in diff[: int(os.environ.get("CALLS_TOP", "30"))]:
            print(f"{d:>6}  {k}")
    return 0


def inner(args: argparse.Namespace) -> int:
    counter = ExecutionCounter()
    work = build_work(args)
    counter.start()
    gc.collect()
    gc.disable()
    for i in range(SAMPLES):
        counter.zero()
        counter.dump(f"nothing#{i}")
    gc.enable()
    for label, run, oi in work:
        name = label.rsplit("/", 1)[1]
        measure(
            counter,
            label,
            run,
            args,
            before=(lambda s=oi, c=name: s.before(c)) if oi else None,
            after=(lambda s=oi, c=name: s.after(c)) if oi else None,
        )
    if args.line == "classic":
        classic_components(counter, args)
    else:
        agentchat_components(counter, args)
    return 0


def agentchat_components(counter: ExecutionCounter, args: argparse.Namespace) -> None:
    """The pieces of an AgentChat tool turn (overhead_agentchat.components)."""
    import asyncio

    from overhead_agentchat import components

    for name, run in components(asyncio.new_event_loop()).items():
        if args.only and not any(w in f"component/{name}" for w in args.only):
            continue
        measure(counter, f"component/{name}", run, args)


# -- outside: run valgrind, read the dumps ---------------------------------------------------------

_DESC = re.compile(r"^desc: Trigger: Client Request: (.+)$", re.M)
_TOTAL = re.compile(r"^(?:summary|totals): (\d+)", re.M)


def read_dumps(out: Path) -> dict[str, tuple[int, Path]]:
    """Label -> (median Ir of its samples, the median sample's file); the main thread's files only
    (``--separate-threads=yes`` writes one file per thread and dump, ``...-01`` is the main one)."""
    samples: dict[str, list[tuple[int, Path]]] = {}
    for path in sorted(out.glob("callgrind.out.*-01")):
        text = path.read_text(errors="replace")
        desc, total = _DESC.search(text), _TOTAL.search(text)
        if desc and total:
            label = desc.group(1).strip().rsplit("#", 1)[0]
            samples.setdefault(label, []).append((int(total.group(1)), path))
    found: dict[str, tuple[int, Path]] = {}
    for label, values in samples.items():
        values.sort(key=lambda v: v[0])
        found[label] = values[len(values) // 2]
    return found


_FN_LINE = re.compile(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*?)(?: \[.*\])?$")


def functions(path: Path) -> dict[str, int]:
    """Exclusive Ir per function, from callgrind_annotate (source paths shortened)."""
    tool = shutil.which("callgrind_annotate")
    if tool is None:
        return {}
    proc = subprocess.run(
        [tool, "--inclusive=no", "--auto=no", "--threshold=100", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    out: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        m = _FN_LINE.match(line)
        if m and "PROGRAM TOTALS" not in line:
            name = re.sub(r"^.*/(Python-[\d.]+/)?", "", m.group(2))
            out[name] = out.get(name, 0) + int(m.group(1).replace(",", ""))
    return out


def annotate_added(path: Path, bare: Path | None, top: int = 20) -> str:
    """The functions that account for the Ir a configuration adds over bare (exclusive, C level)."""
    mine = functions(path)
    if not mine:
        return "(callgrind_annotate not found)"
    base = functions(bare) if bare is not None else {}
    diff = {k: v - base.get(k, 0) for k, v in {**base, **mine}.items() if k in mine or k in base}
    total = sum(diff.values())
    rows = sorted(diff.items(), key=lambda kv: -kv[1])[:top]
    lines = [f"{total:>12,} added Ir (100%)"]
    lines += [f"{v:>12,} ({v / total:6.1%})  {k}" for k, v in rows if total]
    return "\n".join(lines)


def run_under_callgrind(script: Path, argv: list[str], out: Path) -> subprocess.CompletedProcess[str]:
    """Run ``script --inner *argv`` under callgrind, instrumentation off until the script's shim
    turns it on, one file per thread in ``out``, ``PYTHONHASHSEED=0``."""
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--separate-threads=yes",
        f"--callgrind-out-file={out}/callgrind.out.%p",
        sys.executable,
        str(script.resolve()),
        "--inner",
        *argv,
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)


def outer(args: argparse.Namespace) -> int:
    if shutil.which("valgrind") is None:
        print("valgrind is not installed", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="execlave-callgrind-"))
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("callgrind.out.*"):
        old.unlink()
    proc = run_under_callgrind(Path(__file__), sys.argv[1:], out)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        return proc.returncode
    for line in proc.stderr.splitlines():
        if "skipped" in line:
            print(line)
    dumps = read_dumps(out)
    base = dumps.pop("nothing", (0, None))[0]
    per = {label: (total - base) / args.rounds for label, (total, _) in dumps.items()}
    print(
        f"callgrind Ir per round ({args.rounds} measured after {args.warmup} warm-up; "
        f"shim cost {base} Ir subtracted); files in {out}"
    )
    cells: dict[str, dict[str, float]] = {}
    for label, ir in per.items():
        if label.startswith("component/"):
            continue
        cell, config = label.rsplit("/", 1)
        cells.setdefault(cell, {})[config] = ir
    rows, ratio_rows = [], []
    for cell, conf in cells.items():
        bare = conf.get("bare", 0.0)
        add = {c: v - bare for c, v in conf.items() if c not in ("bare", "engine")}
        engine = conf.get("engine")
        rows.append(
            [cell, f"{bare / 1e3:.0f}k", f"{(engine or 0) / 1e3:.0f}k"]
            + [
                f"+{add[c] / 1e3:.0f}k" if c in add else "-"
                for c in ("floor", "tracing", "enforce-only", "full", "ag2-builtin", "openinference")
            ]
        )
        ratio_rows.append(
            [
                cell,
                ratio(add.get("tracing"), add.get("floor")),
                ratio(add.get("enforce-only"), engine),
                ratio(add.get("full"), add.get("openinference")),
                ratio(add.get("full"), add.get("floor")),
            ]
        )
    print(
        table(
            ["cell", "bare", "engine", "floor", "tracing", "enf-only", "full", "ag2-builtin", "openinf."],
            rows,
        )
    )
    print()
    print(table(["cell", "tracing/floor", "enf-only/engine", "full/OI", "full/floor"], ratio_rows))
    comps = {k.split("/", 1)[1]: v for k, v in per.items() if k.startswith("component/")}
    if comps:
        print("\ncomponents (Ir per call):")
        print(table(["piece", "Ir"], [[k, f"{v:,.0f}"] for k, v in comps.items()]))
    wanted = args.annotate or list(DEFAULT_ANNOTATE)
    for label, (_, path) in dumps.items():
        if any(w in label for w in wanted):
            bare = dumps.get(label.rsplit("/", 1)[0] + "/bare")
            print(f"\n== {label} minus bare: exclusive Ir by C function (callgrind_annotate, {path.name})")
            print(annotate_added(path, bare[1] if bare else None))
    return 0


def main() -> int:
    args = parse_args()
    if args.quick:
        args.warmup = min(args.warmup, 3)
    if args.inner:
        return inner(args)
    if args.calls:
        return python_calls(args)
    return outer(args)


if __name__ == "__main__":
    sys.exit(main())
