"""The README's two set-up-included commands are the ones CI and users run: keep them true."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    found = dict(re.findall(r"<!-- (demo|tests) -->\s*```(?:bash|sh)\n([^\n]+)\n```", text))
    assert set(found) == {"demo", "tests"}, "README must mark exactly one demo and one tests command"
    return found


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _readme_commands()["tests"] in ci


def test_demo_command_runs_the_demo_script():
    demo = _readme_commands()["demo"]
    script = re.search(r"(examples/\S+\.py)", demo)
    assert script and (ROOT / script.group(1)).is_file()
