"""examples/existing_tracing.py end to end, with an in-process OTLP/HTTP receiver standing where the
collector would be: execlave's spans are children of the app's request spans, everything arrives
through the app's one pipeline, and nothing is exported twice."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from support.otlp import HttpReceiver
from support.requires import require

require("autogen")
ROOT = Path(__file__).resolve().parents[2]


def test_agent_spans_join_the_apps_request_traces() -> None:
    with HttpReceiver() as receiver:
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_SERVICE_NAME": "not-used-by-the-app",
        }
        env.pop("EXECLAVE_API_KEY", None)
        proc = subprocess.run(
            [sys.executable, "examples/existing_tracing.py"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "allowed: get_disk_usage" in proc.stdout and "blocked: ['ops-tools']" in proc.stdout
        spans = receiver.wait_for(6)

    requests = [s for s in spans if s.name == "POST /ops/chat"]
    rounds = [s for s in spans if s.name == "invoke_agent ops_assistant"]
    checks = [s for s in spans if s.name.startswith("check_tool ")]
    assert len(requests) == 2 and len(rounds) == 2 and len(checks) == 2

    # Exported once each: no span id twice, one resource (the app's), the app's scope and execlave's.
    assert not [sid for sid, n in Counter(s.span_id for s in spans).items() if n > 1]
    assert {s.resource["service.name"] for s in spans} == {"ops-api"}
    assert {s.scope for s in spans} == {"ops-api", "execlave"}

    # Each agent round is a child of its own request span, in the same trace; each check of its round.
    for request in requests:
        (round_,) = [r for r in rounds if r.parent_span_id == request.span_id]
        assert round_.trace_id == request.trace_id
        (check,) = [c for c in checks if c.parent_span_id == round_.span_id]
        assert check.trace_id == request.trace_id
    assert len({r.trace_id for r in requests}) == 2

    blocked = next(r for r in rounds if r.attributes["execlave.policy.decision"] == "block")
    assert blocked.status_code == 2  # STATUS_CODE_ERROR
    (blocked_check,) = [c for c in checks if c.parent_span_id == blocked.span_id]
    assert blocked_check.name == "check_tool delete_logs"
    violations = [a for e, a in blocked_check.events if e == "execlave.policy.violation"]
    assert [v["execlave.policy.id"] for v in violations] == ["ops-tools"]
