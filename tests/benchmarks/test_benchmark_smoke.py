"""The overhead benchmarks still run: each script's ``--quick`` mode builds every configuration,
checks it (spans recorded, injection and denied-tool probes blocked, trace-only blocking nothing)
and exits 0. Nothing here is timed or compared: speed lives in benchmarks/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(script: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def test_classic_benchmark_quick_mode_passes_its_probes() -> None:
    autogen = pytest.importorskip("autogen")
    if not hasattr(autogen, "ConversableAgent"):
        pytest.skip("no classic AutoGen here")
    assert "targets:" in _run("overhead_classic.py")


def test_agentchat_benchmark_quick_mode_passes_its_probes() -> None:
    pytest.importorskip("autogen_agentchat")
    pytest.importorskip("autogen_ext.models.replay")
    assert "targets:" in _run("overhead_agentchat.py")
