"""False positives: realistic operations prompts and tool calls against the bundled baseline
switched to block mode. The figure (cases, blocks) is printed for the closing report."""

from pathlib import Path

import pytest
import yaml

from execlave.policy import CheckRequest, PolicyEngine, ToolCall, baseline_policies

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
PROMPTS = [
    line
    for line in (CORPUS / "benign_prompts.txt").read_text(encoding="utf-8").splitlines()
    if line.strip() and not line.startswith("#")
]
TOOL_CALLS = yaml.safe_load((CORPUS / "benign_tool_calls.yaml").read_text(encoding="utf-8"))
ENGINE = PolicyEngine([p.model_copy(update={"enforcement_mode": "block"}) for p in baseline_policies()])


def test_corpus_is_big_enough():
    assert len(PROMPTS) + len(TOOL_CALLS) >= 100
    assert all(p.enforcement_mode == "block" for p in ENGINE.policies)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_benign_prompt_is_not_flagged(prompt):
    decision = ENGINE.evaluate(CheckRequest("ops-assistant", input=prompt))
    assert decision.violations == (), decision.violations


@pytest.mark.parametrize("call", TOOL_CALLS, ids=[c["name"] for c in TOOL_CALLS])
def test_benign_tool_call_is_not_flagged(call):
    decision = ENGINE.evaluate(
        CheckRequest("ops-assistant", tool_calls=(ToolCall(call["name"], call["arguments"]),))
    )
    assert decision.violations == (), decision.violations
