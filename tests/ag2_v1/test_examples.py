"""The AG2 1.x quickstart runs offline: one allowed tool call, one blocked, one blocked input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import require_ag2

require_ag2()
pytestmark = pytest.mark.ag2

ROOT = Path(__file__).resolve().parents[2]


def test_ag2_quickstart_runs_offline() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples/ag2_quickstart.py")],
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
    assert "blocked: ops-no-injection on input" in out
    assert "tools executed: ['get_status(db)']" in out
    assert "  check_tool delete_db  decision=block  status=ERROR" in out
    assert "  execute_tool get_status  decision=allow  status=UNSET" in out
