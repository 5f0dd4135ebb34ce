"""Concurrent async rounds against Execlave never serialise on one connection: N async checks
(each a distinct request, so the decision cache does not answer) against the loopback fake of
Execlave's API answering every request after a fixed latency.

    pip install -e .
    PYTHONPATH=src:tests python benchmarks/wire_concurrency.py [--rounds 100] [--latency 0.02]

Prints the wall time of all rounds next to rounds x latency (what one shared connection, or a
client that waits for each answer in turn, would take at least), and the same rounds against the
fake with no latency: the difference is the latency that was not overlapped (the rest is CPU, of
the client and of the fake server, in the same process).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from execlave import Execlave
from execlave.policy import CheckRequest
from support.execlave_api import ExeclaveAPI

KEY = "exk_live_BENCH_0000000000000000"


async def rounds(exe: Execlave, n: int) -> float:
    requests = [CheckRequest(agent_id="bench-agent", input=f"round {i}") for i in range(n)]
    await exe.adecide(CheckRequest(agent_id="bench-agent", input="warm-up"))  # one connection, imports
    start = time.perf_counter()
    decisions = await asyncio.gather(*(exe.adecide(r) for r in requests))
    elapsed = time.perf_counter() - start
    assert all(d.allowed and not d.bypasses for d in decisions)
    return elapsed


def measure(n: int, latency: float) -> tuple[float, int]:
    with ExeclaveAPI(api_key=KEY) as api:
        api.latency = latency
        exe = Execlave(KEY, base_url=api.base_url, request_timeout=10.0)
        try:
            elapsed = asyncio.run(rounds(exe, n))
        finally:
            exe.shutdown(1.0)
        return elapsed, len(api.calls("enforce"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.02)
    args = parser.parse_args()
    elapsed, served = measure(args.rounds, args.latency)
    baseline, _ = measure(args.rounds, 0.0)
    serial = args.rounds * args.latency
    print(f"{args.rounds} concurrent async rounds, {args.latency * 1000:.0f} ms server latency")
    print(f"  enforce requests served:  {served}")
    print(f"  total wall time:          {elapsed * 1000:.0f} ms")
    print(f"  {args.rounds} x latency:           {serial * 1000:.0f} ms  ({serial / elapsed:.1f}x wall)")
    print(f"  same rounds, no latency:  {baseline * 1000:.0f} ms  (CPU: client and fake in one process)")


if __name__ == "__main__":
    main()
