"""The public value types (CheckRequest, ToolCall, ToolOutput, Decision) keep their API whatever
their constructors do inside: fields, keyword and positional construction, defaults,
immutability, equality, hash, repr, dataclasses.replace and pickling."""

import dataclasses
import pickle

import pytest

from execlave.policy.types import ALLOW, CheckRequest, Decision, ToolCall, ToolOutput


def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def test_fields_in_order():
    assert _names(CheckRequest) == (
        "agent_id",
        "input",
        "tool_calls",
        "tool_outputs",
        "environment",
        "metadata",
        "count_request",
    )
    assert _names(ToolCall) == ("name", "arguments", "call_id")
    assert _names(ToolOutput) == ("content", "name", "call_id")
    assert _names(Decision) == (
        "outcome",
        "violations",
        "policy_set_version",
        "evaluated_policy_ids",
        "bypasses",
    )


def test_defaults():
    r = CheckRequest("a")
    assert (r.input, r.tool_calls, r.tool_outputs, r.environment, r.metadata, r.count_request) == (
        None,
        (),
        (),
        None,
        None,
        False,
    )
    assert (ToolCall("t").arguments, ToolCall("t").call_id) == (None, None)
    assert (ToolOutput("c").name, ToolOutput("c").call_id) == (None, None)
    d = Decision("allow")
    assert (d.violations, d.policy_set_version, d.evaluated_policy_ids, d.bypasses) == ((), 0, (), ())


def test_positional_and_keyword_construction_agree():
    call = ToolCall("t", {"x": 1}, "c1")
    out = ToolOutput("text", "t", "c1")
    pos = CheckRequest("a", "hi", (call,), (out,), "prod", {"k": "v"}, True)
    kw = CheckRequest(
        count_request=True,
        metadata={"k": "v"},
        environment="prod",
        tool_outputs=(out,),
        tool_calls=(call,),
        input="hi",
        agent_id="a",
    )
    assert pos == kw
    assert (kw.agent_id, kw.input, kw.tool_calls, kw.tool_outputs) == ("a", "hi", (call,), (out,))
    assert (kw.environment, kw.metadata, kw.count_request) == ("prod", {"k": "v"}, True)
    assert ToolCall(name="t", arguments={"x": 1}, call_id="c1") == call
    assert ToolOutput(content="text", name="t", call_id="c1") == out
    assert Decision("block", ({"policyId": "p"},), 3) == Decision(
        outcome="block", violations=({"policyId": "p"},), policy_set_version=3
    )


def test_bad_arguments_are_type_errors():
    with pytest.raises(TypeError):
        CheckRequest()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        CheckRequest("a", nope=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        CheckRequest("a", agent_id="b")  # type: ignore[misc]
    with pytest.raises(TypeError):
        ToolCall("t", None, None, None)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        ToolOutput()  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "value, attribute",
    [
        (CheckRequest("a"), "input"),
        (ToolCall("t"), "name"),
        (ToolOutput("c"), "content"),
        (Decision("allow"), "outcome"),
    ],
)
def test_immutable(value, attribute):
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, attribute, "changed")
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(value, attribute)
    with pytest.raises((AttributeError, TypeError)):
        value.extra = 1  # no __dict__


def test_equality_hash_and_repr():
    assert CheckRequest("a", "x") == CheckRequest("a", "x") != CheckRequest("a", "y")
    assert hash(CheckRequest("a", "x")) == hash(CheckRequest("a", "x"))
    assert hash(ToolCall("t", "raw", "c")) == hash(ToolCall("t", "raw", "c"))
    assert hash(ToolOutput("c", "n")) == hash(ToolOutput("c", "n"))
    assert repr(ToolCall("t", None, "c")) == "ToolCall(name='t', arguments=None, call_id='c')"
    assert repr(ToolOutput("c")) == "ToolOutput(content='c', name=None, call_id=None)"
    assert repr(CheckRequest("a")) == (
        "CheckRequest(agent_id='a', input=None, tool_calls=(), tool_outputs=(), environment=None, "
        "metadata=None, count_request=False)"
    )
    # evaluated_policy_ids and bypasses take no part in equality
    assert Decision("allow", (), 1, ("p",), ("x",)) == Decision("allow", (), 1)
    assert Decision("allow") == ALLOW
    assert hash(Decision("allow", (), 1, ("p",))) == hash(Decision("allow", (), 1))
    assert "Decision(outcome='allow'" in repr(ALLOW)


def test_replace_and_pickle():
    r = CheckRequest("a", "x", count_request=True)
    r2 = dataclasses.replace(r, input="y")
    assert (r2.agent_id, r2.input, r2.count_request) == ("a", "y", True)
    for value in (
        r,
        ToolCall("t", {"a": [1]}, "c"),
        ToolOutput("c", "n", "i"),
        Decision("warn", ({"p": 1},), 2),
    ):
        assert pickle.loads(pickle.dumps(value)) == value


def _reference_merge(decisions: list[Decision]) -> tuple:
    """Worst outcome wins; violations, evaluated ids (first seen, once) and bypasses in order;
    the highest policy set version."""
    if not decisions:
        return ("allow", (), 0, (), ())
    rank = {"allow": 0, "warn": 1, "block": 2}
    outcome = max((d.outcome for d in decisions), key=rank.__getitem__)
    ids: dict[str, None] = {}
    for d in decisions:
        for pid in d.evaluated_policy_ids:
            ids.setdefault(pid, None)
    return (
        outcome,
        tuple(v for d in decisions for v in d.violations),
        max(d.policy_set_version for d in decisions),
        tuple(ids),
        tuple(b for d in decisions for b in d.bypasses),
    )


def test_merge_worst_outcome_and_everything_in_order():
    import itertools

    pool = [
        Decision("allow", (), 1, ("a", "b")),
        Decision("warn", ({"policyId": "w", "enforcementMode": "warn"},), 3, ("b", "w")),
        Decision("block", ({"policyId": "x", "enforcementMode": "block"},), 2, ("x",), ("outage",)),
        Decision("allow", (), 0, (), ("fail_open",)),
    ]
    for n in range(5):
        for combo in itertools.permutations(pool, n):
            merged = Decision.merge(list(combo))
            got = (
                merged.outcome,
                merged.violations,
                merged.policy_set_version,
                merged.evaluated_policy_ids,
                merged.bypasses,
            )
            assert got == _reference_merge(list(combo))
    assert Decision.merge([]) is ALLOW
