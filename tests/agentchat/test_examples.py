"""The AgentChat quickstart runs offline and shows one allowed and one blocked tool call."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import require_agentchat

require_agentchat()

ROOT = Path(__file__).resolve().parents[2]


def test_agentchat_quickstart_runs_offline() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples/agentchat_quickstart.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "", "PYTHONPATH": str(ROOT / "src"), "EXECLAVE_API_KEY": ""},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "reply: The database is healthy." in out
    assert "blocked: ops-no-destructive-tools on delete_db" in out
    assert "tools executed: ['get_status(db)']" in out
    assert "check_tool delete_db  decision=block  status=ERROR" in out
