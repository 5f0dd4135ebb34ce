"""The layers hold: the import contracts in pyproject.toml are kept, a wrong-way import breaks
them, and the light entry points load no heavy dependency at run time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import execlave

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(execlave.__file__).resolve().parent
HEAVY = ("opentelemetry", "httpx", "autogen", "ag2", "autogen_agentchat", "autogen_core")


def _loaded_after(statement: str) -> list[str]:
    code = (
        f"import json, sys; {statement}; print(json.dumps(sorted(set(m.split('.')[0] for m in sys.modules))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in json.loads(out.stdout) if m in HEAVY]


@pytest.mark.parametrize("module", ["execlave", "execlave.cli", "execlave.policy", "execlave.errors"])
def test_light_modules_import_no_opentelemetry_httpx_or_autogen(module):
    assert _loaded_after(f"import {module}") == []


def test_the_client_and_the_adapter_entry_points_load_no_autogen():
    # Agents are recognised by shape; a framework is imported only when its agent is instrumented.
    statement = "from execlave import Execlave, instrument_autogen_agent, raise_policy_blocks"
    assert _loaded_after(statement) == ["httpx", "opentelemetry"]


def _lint_imports(pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    command = [str(Path(sys.executable).with_name("lint-imports")), "--no-cache", "--config"]
    return subprocess.run(
        [*command, str(ROOT / "pyproject.toml")], capture_output=True, text=True, env=env, cwd=ROOT
    )


def test_the_import_contracts_are_kept():
    result = _lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "wrong_way", "contract"),
    [
        ("policy/normalize.py", "import opentelemetry.trace", "policy/ is pure"),
        ("policy/engine.py", "from ..telemetry import core", "policy/ is pure"),
        ("telemetry/config.py", "import autogen_agentchat", "telemetry/ records and exports"),
        ("connection/bypass.py", "from .. import client", "connection/ (the Execlave wire)"),
        ("cli.py", "from . import client", "the CLI works offline"),
        ("integrations/ag2.py", "from ..connection import decisions", "integrations/ drive the client"),
        ("integrations/_base.py", "from .autogen import _messages", "integrations/_base.py names no"),
    ],
)
def test_a_wrong_way_import_breaks_its_contract(tmp_path, module, wrong_way, contract):
    copy = tmp_path / "execlave"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text() + f"\n{wrong_way}  # the wrong way\n")
    result = _lint_imports(pythonpath=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken
