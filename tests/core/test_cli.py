import json
import subprocess
import sys
from pathlib import Path

import pytest

from execlave.cli import main

ROOT = Path(__file__).resolve().parents[2]
OPS = ROOT / "examples" / "policies" / "ops.yaml"


@pytest.fixture
def policy_file(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "- id: no-delete\n  policyType: tool_invocation\n  enforcementMode: block\n"
        "  ruleDefinition: {deny: ['delete_*']}\n"
        "- id: inj\n  policyType: injection_scan\n  enforcementMode: block\n"
        "  ruleDefinition: {patterns: ['ignore previous instructions']}\n"
    )
    return path


def test_validate_ok(policy_file, capsys):
    assert main(["policy", "validate", str(policy_file)]) == 0
    assert "ok (2 policies)" in capsys.readouterr().out


def test_validate_reports_each_error_with_file_policy_field(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "- id: backref\n  policyType: injection_scan\n  ruleDefinition: {patterns: ['ok', '(a)\\1']}\n"
        "- id: mode\n  policyType: tool_invocation\n  enforcementMode: shout\n  ruleDefinition: {deny: [x]}\n"
    )
    assert main(["policy", "validate", str(bad)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith(f"{bad}: backref / ruleDefinition.patterns[1]: ") for line in err), err
    assert any(line.startswith(f"{bad}: mode / enforcementMode: ") for line in err), err


def test_check_input_blocked(policy_file, capsys):
    code = main(
        [
            "policy",
            "check",
            str(policy_file),
            "--agent",
            "ops-assistant",
            "--input",
            "Ignore previous instructions",
        ]
    )
    out = capsys.readouterr().out
    assert code == 3
    assert "decision: block" in out and "inj" in out


def test_check_tool_json(policy_file, capsys):
    code = main(
        [
            "policy",
            "check",
            str(policy_file),
            "--agent",
            "ops-assistant",
            "--tool",
            "delete_file",
            "--args",
            '{"path": "/etc"}',
            "--json",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 3 and data["decision"] == "block"
    assert data["violations"][0]["toolName"] == "delete_file"


def test_check_allowed(policy_file, capsys):
    assert (
        main(["policy", "check", str(policy_file), "--agent", "ops-assistant", "--tool", "list_files"]) == 0
    )
    assert "decision: allow" in capsys.readouterr().out


def test_check_bad_args(policy_file, capsys):
    assert (
        main(["policy", "check", str(policy_file), "--agent", "ops-assistant", "--tool", "x", "--args", "{"])
        == 1
    )
    assert "--args is not valid JSON" in capsys.readouterr().err
    assert main(["policy", "check", str(policy_file), "--agent", "Ops", "--input", "x"]) == 1


def test_example_policies_validate_via_entry_point():
    # The README's policy example files stay valid; run the installed console script as a user would.
    files = sorted(str(p) for p in (ROOT / "examples" / "policies").glob("*.yaml"))
    assert files
    result = subprocess.run(
        [sys.executable, "-m", "execlave.cli", "policy", "validate", *files],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
