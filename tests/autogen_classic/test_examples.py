"""The examples run offline and do what they say (subprocesses with this interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.requires import require

require("autogen")
ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_quickstart_allows_then_blocks() -> None:
    proc = run("examples/quickstart.py")
    assert proc.returncode == 0, proc.stderr
    assert "reply: Roll the web tier" in proc.stdout
    assert "blocked: [('no-destructive-input', 'input')]" in proc.stdout
    assert "invoke_agent ops_assistant" in proc.stdout  # console span tree


def test_demo_allowed_call_runs_blocked_call_never_does() -> None:
    proc = run("examples/demo.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tools executed: ['get_disk_usage']" in proc.stdout
    assert "check_tool delete_logs" in proc.stdout
    assert "execute_tool get_disk_usage" in proc.stdout
    assert "execute_tool delete_logs" not in proc.stdout
    assert "demo OK" in proc.stdout


def test_handle_block_self_test_returns_403_with_violations() -> None:
    proc = run("examples/handle_block.py", "--self-test")
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout.split("403 ", 1)[1])
    assert body["error"] == "blocked"
    assert [v["policyId"] for v in body["violations"]] == ["no-destructive-input"]
