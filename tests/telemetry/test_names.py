"""The span vocabulary (execlave/telemetry/names.py): the GenAI keys are the semantic conventions'
where the installed opentelemetry-semantic-conventions defines them, and no other module spells a
key or an operation value itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from execlave.telemetry import names

SRC = Path(__file__).resolve().parents[2] / "src" / "execlave"
GEN_AI = [n for n in dir(names) if n.startswith("GEN_AI_")]


@pytest.mark.parametrize("constant", GEN_AI)
def test_gen_ai_keys_are_the_semantic_conventions(constant: str) -> None:
    gen_ai = pytest.importorskip("opentelemetry.semconv._incubating.attributes.gen_ai_attributes")
    ours = getattr(names, constant)
    assert ours == constant.lower().replace("_", ".", 1).replace("gen.ai", "gen_ai") or ours.startswith(
        "gen_ai."
    )
    if hasattr(gen_ai, constant):  # missing in older releases (0.48b0 has three): ours stands in
        assert getattr(gen_ai, constant) == ours


def test_operation_values_are_semantic_convention_values() -> None:
    gen_ai = pytest.importorskip("opentelemetry.semconv._incubating.attributes.gen_ai_attributes")
    values = getattr(gen_ai, "GenAiOperationNameValues", None)
    known = {v.value for v in values} if values is not None else set()
    for value in (names.OP_INVOKE_AGENT, names.OP_EXECUTE_TOOL, names.OP_CHAT):
        member = getattr(values, value.upper(), None)  # older releases (0.48b0) lack the agent values
        assert member is None or member.value == value, value
    assert names.OP_CHECK_TOOL not in known  # ours: carried as execlave.operation, not gen_ai.operation.name


def _is_module(dotted: str) -> bool:
    """Logger names and config rows name modules (``execlave.policy.loader``): not span keys."""
    path = SRC.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").exists() or path.is_dir()


def test_no_module_spells_a_span_key_itself() -> None:
    literal = re.compile(
        r"""["'](?:gen_ai\.[a-z_.]+|execlave\.(?:policy|violation|tool|round|agent|enforcement|bypass|operation|stream)\b[a-z_.]*)["']"""
    )
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "names.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            keys = [m.group(0)[1:-1] for m in literal.finditer(line)]
            if any(not _is_module(key) for key in keys):
                found.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert not found, "use execlave.telemetry.names:\n" + "\n".join(found)
