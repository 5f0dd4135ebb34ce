"""_messages: pure extraction from classic AutoGen message shapes (no AutoGen needed)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from execlave.integrations.autogen._messages import (
    content_text,
    extract_tool_calls,
    parse_arguments,
    received,
)
from execlave.policy.types import ToolCall, ToolOutput

json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)
keys = st.sampled_from(
    ["tool_calls", "function_call", "function", "name", "arguments", "content", "role", "id"]
)
shaped = st.recursive(
    json_like,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=30,
)
names = st.text(min_size=1, max_size=15)


def test_content_text_shapes() -> None:
    assert content_text("hi") == "hi"
    assert content_text(None) is None
    multimodal = [
        {"type": "text", "text": "first"},
        {"type": "image_url", "image_url": {"url": "http://x/y.png"}},
        {"type": "text", "text": "second"},
    ]
    assert content_text(multimodal) == "first\nsecond"
    assert content_text([SimpleNamespace(type="text", text="obj")]) == "obj"
    assert content_text(42) == "42"


def test_received_walks_back_to_the_agents_own_message() -> None:
    own = {"role": "assistant", "content": "reply", "name": "me"}
    messages = [
        {"role": "user", "content": "old"},
        own,
        {"role": "user", "content": [{"type": "text", "text": "new"}, {"type": "text", "text": "part"}]},
        {
            "role": "assistant",
            "content": "beside a call",
            "tool_calls": [{"id": "c1", "function": {"name": "f"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "tool result"},
    ]
    text, outputs = received(messages, lambda m: m is own)
    assert text == "new\npart\nbeside a call"
    assert outputs == [ToolOutput("tool result", None, "c1")]
    # Nothing recognised as the agent's own: everything is scanned, whatever its role.
    assert received(messages)[0] == "old\nreply\nnew\npart\nbeside a call"
    assert received([{"role": "user", "content": None}]) == (None, [])
    assert received(None) == (None, [])
    assert received(["bare string"]) == ("bare string", [])


def test_received_tool_shaped_text_that_answers_no_call_is_input() -> None:
    messages = [
        {"role": "tool", "tool_call_id": "c9", "content": "sender-set tool text"},
        {"role": "function", "name": "f", "content": "own text", "tool_responses": [{"content": "entry"}]},
        {"role": "user", "content": "hi", "tool_responses": [{"tool_call_id": "c1", "content": "carried"}]},
    ]
    text, outputs = received(messages)
    assert text == "sender-set tool text\nentry\nown text\ncarried\nhi"
    assert outputs == []


def test_tool_calls_modern_and_legacy_shapes() -> None:
    reply = {
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}},
            {"id": "c2", "type": "function", "function": {"name": "delete_all", "arguments": "{not json"}},
        ],
        "function_call": {"name": "legacy_fn", "arguments": "[1, 2]"},
    }
    assert extract_tool_calls(reply) == [
        ToolCall("lookup", {"q": "x"}, "c1"),
        ToolCall("delete_all", "{not json", "c2"),
        ToolCall("legacy_fn", [1, 2], None),
    ]


def test_tool_calls_as_objects_and_none() -> None:
    obj = SimpleNamespace(
        tool_calls=[SimpleNamespace(id="c9", function=SimpleNamespace(name="drop_db", arguments="{}"))],
        function_call=None,
    )
    assert extract_tool_calls(obj) == [ToolCall("drop_db", {}, "c9")]
    assert extract_tool_calls({"tool_calls": None, "function_call": None}) == []
    assert extract_tool_calls("just text") == []
    assert extract_tool_calls(None) == []


def test_nameless_call_is_kept_with_empty_name() -> None:
    assert extract_tool_calls({"tool_calls": [{"id": "x", "function": {"arguments": "{}"}}]}) == [
        ToolCall("", {}, "x")
    ]


def test_parse_arguments() -> None:
    assert parse_arguments('{"a": 1}') == {"a": 1}
    assert parse_arguments("{oops") == "{oops"
    assert parse_arguments({"a": 1}) == {"a": 1}
    assert parse_arguments(None) is None


def test_received_tool_outputs_since_own_message() -> None:
    own = {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}, {"id": "c2"}]}
    messages = [
        {"role": "user", "content": "call legacy", "function_call": {"name": "legacy"}},
        {"role": "tool", "tool_call_id": "c1", "content": "stale output"},
        own,
        {
            "role": "tool",
            "content": "a\n\nb",
            "tool_responses": [
                {"tool_call_id": "c1", "role": "tool", "content": "a"},
                {"tool_call_id": "c2", "role": "tool", "content": "b"},
            ],
        },
        {"role": "function", "name": "legacy", "content": "c"},
        {"role": "user", "content": "question"},
    ]
    assert received(messages, lambda m: m is own) == (
        "question",
        [ToolOutput("a", None, "c1"), ToolOutput("b", None, "c2"), ToolOutput("c", "legacy", None)],
    )


@given(shaped)
def test_extractors_never_raise(value: Any) -> None:
    calls = extract_tool_calls(value)
    assert all(isinstance(c, ToolCall) and isinstance(c.name, str) for c in calls)
    result, outputs = received(value if isinstance(value, list) else [value])
    assert isinstance(outputs, list)
    assert result is None or isinstance(result, str)
    text = content_text(value)
    assert text is None or isinstance(text, str)


@given(
    st.lists(st.tuples(names, json_like, st.booleans(), st.booleans()), max_size=5),
    st.one_of(st.none(), st.tuples(names, st.text(max_size=20))),
    st.booleans(),
)
def test_every_tool_name_is_found(
    calls: list[tuple[str, Any, bool, bool]], legacy: tuple[str, str] | None, as_object: bool
) -> None:
    def wrap(d: dict[str, Any]) -> Any:
        return SimpleNamespace(**d) if as_object else d

    entries = []
    for i, (name, args, malformed, _) in enumerate(calls):
        raw = "{" + json.dumps(args) if malformed else json.dumps(args)
        entries.append(
            wrap({"id": f"c{i}", "type": "function", "function": wrap({"name": name, "arguments": raw})})
        )
    message: dict[str, Any] = {"content": None, "tool_calls": entries or None}
    if legacy is not None:
        message["function_call"] = wrap({"name": legacy[0], "arguments": legacy[1]})
    found = [c.name for c in extract_tool_calls(wrap(message))]
    expected = [c[0] for c in calls] + ([legacy[0]] if legacy else [])
    assert found == expected


def test_parse_arguments_decodes_exactly_as_json_decoders_do() -> None:
    """Strict JSON first, then lenient (raw control characters), else the raw string: the same
    result as the decoders' own ``decode`` on edge cases and random fragments."""
    import json
    import random

    from execlave.integrations.autogen._messages import parse_arguments

    def reference(text: str) -> object:
        for decoder in (json.JSONDecoder(), json.JSONDecoder(strict=False)):
            try:
                return decoder.decode(text)
            except (ValueError, RecursionError):
                continue
        return text

    cases = [
        '{"a": 1}',
        " [1, 2] ",
        '{"a": 1} x',
        "",
        "  ",
        '"s"',
        "null",
        '{"a": "x\ny"}',
        "NaN",
        "[" * 100_000,
    ]
    cases += ['{"a":1}{"b":2}', "\ufeff{}", '{"a":1,}', "{'a': 1}", "tru", "true\n", '"\\ud800"']
    rnd = random.Random(0)
    alphabet = '{}[]":,0123456789 \n\t\x01abctrueflsn\\-.eE'
    cases += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 12))) for _ in range(3000)]
    for text in cases:
        expected, got = reference(text), parse_arguments(text)
        assert type(got) is type(expected) and (got == expected or got != got), text


class _Dict(dict):  # type: ignore[type-arg]
    """A dict subclass whose ``get`` reads differently from its storage."""

    def get(self, key: Any, default: Any = None) -> Any:
        return "subclass " + str(super().get(key, default))


class _Role(str):
    pass


_plain_roles = st.sampled_from(["user", "assistant", "system"])
_plain_contents = st.sampled_from(["a", "b c", "", None, _Role("q")])
_roles = st.sampled_from(["tool", "function", None, 3, _Role("tool")])
_contents = st.sampled_from([0, False, {}, [], ["x", {"text": "y"}], {"text": "z"}])


@st.composite
def _message(draw: Any, kind: str) -> Any:
    if kind == "str":
        return draw(st.sampled_from(["", "loose text"]))
    message: dict[str, Any] = {"role": draw(_plain_roles), "content": draw(_plain_contents)}
    if kind == "role":
        message["role"] = draw(_roles)
    if kind == "content":
        message["content"] = draw(_contents)
    if kind == "partial":
        del message[draw(st.sampled_from(["role", "content"]))]
    if kind == "extra":
        key = draw(st.sampled_from(["tool_responses", "context", "tool_call_id", "name", "tool_calls"]))
        message[key] = draw(
            st.sampled_from(
                [
                    None,
                    [],
                    "c1",
                    {"k": "v"},
                    [{"tool_call_id": "c1", "content": "out"}],
                    [{"id": "c1", "function": {"name": "f", "arguments": "{}"}}],
                ]
            )
        )
    return _Dict(message) if kind == "subclass" else message


@st.composite
def _history(draw: Any) -> list[Any]:
    """Mostly plain messages, a few of any other shape anywhere."""
    messages = draw(st.lists(_message("plain"), max_size=12))
    for kind in draw(
        st.lists(st.sampled_from(["str", "subclass", "partial", "extra", "role", "content"]), max_size=2)
    ):
        messages.insert(draw(st.integers(min_value=0, max_value=len(messages))), draw(_message(kind)))
    return messages


@settings(max_examples=400)
@given(
    _history(),
    st.lists(st.integers(min_value=0, max_value=13), max_size=3),
    st.integers(min_value=0, max_value=3),
)
def test_received_reads_long_histories_exactly_as_the_walk(
    messages: list[Any], own_at: list[int], start: int
) -> None:
    """Long histories of plain messages are read with whole-list operations: the result is the
    walk's, whatever the messages and wherever the agent's own messages are."""
    from execlave.integrations.autogen import _messages

    own = {id(messages[i]): messages[i] for i in own_at if i < len(messages)}
    fast = received(messages, own=own, start=start)
    bulk_from = _messages._BULK_FROM
    _messages._BULK_FROM = 10**9
    try:
        walked = received(messages, own=own, start=start)
    finally:
        _messages._BULK_FROM = bulk_from
    assert fast == walked


def test_received_long_plain_history_is_every_content_in_order() -> None:
    history = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}" if i % 3 else ""} for i in range(9)
    ]
    text, outputs = received(history)
    assert text == "m1\nm2\nm4\nm5\nm7\nm8" and outputs == []
    own = {id(history[3]): history[3]}
    assert received(history, own=own) == ("m4\nm5\nm7\nm8", [])


_ODD_MESSAGES: list[Any] = [
    {"role": "user", "content": "c", "context": {"k": "v"}},
    {"role": "tool", "tool_call_id": "c1", "content": "tool out"},
    {"role": "function", "name": "f", "content": "fn out"},
    {"role": "tool", "content": "", "tool_responses": [{"tool_call_id": "c1", "content": "r"}]},
    {"role": "user", "content": "u", "tool_responses": [{"tool_call_id": "zz", "content": "r"}]},
    {"role": 3, "content": "int role"},
    {"role": _Role("tool"), "tool_call_id": "c1", "content": "sub role"},
    {"content": "no role"},
    {"role": "user"},
    {"role": "user", "content": 0},
    {"role": "user", "content": {}},
    {"role": "user", "content": ["x", {"text": "y"}]},
    _Dict({"role": "user", "content": "sub"}),
    "a bare str",
    "",
]


def test_received_long_histories_with_one_odd_message_read_as_the_walk() -> None:
    from execlave.integrations.autogen import _messages

    request = {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "function": {"name": "f"}}]}
    for odd in _ODD_MESSAGES:
        for at in (0, 3, 8):
            history: list[Any] = [{"role": "user", "content": f"m{i}"} for i in range(8)]
            history.insert(1, request)
            history.insert(at, odd)
            for own in ({}, {id(history[2]): history[2]}):
                fast = received(history, own=own)
                bulk_from = _messages._BULK_FROM
                _messages._BULK_FROM = 10**9
                try:
                    walked = received(history, own=own)
                finally:
                    _messages._BULK_FROM = bulk_from
                assert fast == walked, (odd, at, own)
