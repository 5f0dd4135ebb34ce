"""Property tests: the engine decides on any request without raising, and a denied tool name is
found wherever it sits among the calls."""

from hypothesis import given, settings
from hypothesis import strategies as st

from execlave.policy import CheckRequest, PolicyEngine, ToolCall, ToolOutput, baseline_policies, load_policies

ENGINE = PolicyEngine(
    [
        *baseline_policies(),
        *load_policies(
            [{"id": "deny", "policyType": "tool_invocation", "ruleDefinition": {"deny": ["delete_*"]}}]
        ),
    ]
)
json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
calls = st.builds(ToolCall, st.text(max_size=20), json_like, st.none() | st.text(max_size=8))


@settings(max_examples=300)
@given(
    st.none() | st.text(),
    st.lists(calls, max_size=4),
    st.lists(st.builds(ToolOutput, st.text(), st.none() | st.text(max_size=8)), max_size=3),
)
def test_any_request_gets_a_decision(text, tool_calls, outputs):
    decision = ENGINE.evaluate(
        CheckRequest("p", input=text, tool_calls=tuple(tool_calls), tool_outputs=tuple(outputs))
    )
    assert decision.outcome in ("allow", "warn", "block")


@given(st.lists(calls, max_size=5), st.integers(min_value=0, max_value=5), st.text(max_size=10))
def test_denied_tool_found_at_any_position(others, position, suffix):
    bad = ToolCall("delete_" + suffix)
    tool_calls = list(others)
    tool_calls.insert(min(position, len(tool_calls)), bad)
    decision = ENGINE.evaluate(CheckRequest("p", tool_calls=tuple(tool_calls)))
    assert decision.blocked
    assert bad.name in {v["toolName"] for v in decision.blocking_violations}
