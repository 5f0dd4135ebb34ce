"""Pure extraction of what policies look at from classic AutoGen message shapes.

Nothing here imports AutoGen or OpenTelemetry, and nothing here raises on odd input: a reply
may be a str, a dict (``tool_calls`` / ``function_call`` possibly None), an object with those
attributes, None, or anything else. Tool names are never dropped: a call whose arguments are
malformed JSON keeps its name (arguments stay the raw string).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ...policy.types import ToolCall, ToolOutput


def _get(obj: Any, key: str) -> Any:
    """``obj[key]`` for mappings, ``obj.key`` for objects; None when absent or on any error."""
    try:
        if type(obj) is dict:  # the common case, without an ABC isinstance check
            return obj.get(key)
        if isinstance(obj, Mapping):
            return obj.get(key)
        if obj is None or isinstance(obj, (str, bytes, int, float, bool, list, tuple)):
            return None
        return getattr(obj, key, None)
    except Exception:
        return None


def _as_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def content_text(content: Any) -> str | None:
    """Message content as text: a str as is; a multimodal list -> all its text parts joined by
    newlines (image parts skipped); None -> None; anything else -> ``str()``."""
    if content is None:
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
                continue
            text = _get(part, "text")
            if isinstance(text, str):
                parts.append(text)
            elif text is not None:
                parts.append(_as_str(text))
        return "\n".join(parts)
    return _as_str(content)


def _role(message: Any) -> str | None:
    role = _get(message, "role")
    return role if isinstance(role, str) else None


def _context_text(message: Any) -> str | None:
    """String values of a message's ``context`` (classic AutoGen may format them into the
    content when ``allow_format_str_template`` is set): scanned with the content."""
    context = _get(message, "context")
    if not isinstance(context, Mapping):
        return None
    texts = [_as_str(v) for v in context.values() if v is not None]
    return "\n".join(texts) if texts else None


def parse_arguments(arguments: Any) -> Any:
    """JSON-decode a string of arguments when it parses; otherwise return it unchanged."""
    if isinstance(arguments, (str, bytes, bytearray)):
        try:  # strict; without keywords json.loads reuses its shared decoder (a keyword builds a new one)
            return json.loads(arguments)
        except (ValueError, TypeError, RecursionError):
            pass
        try:  # AutoGen itself accepts raw control characters in strings
            return json.loads(arguments, strict=False)
        except (ValueError, TypeError, RecursionError):
            pass
        return arguments if isinstance(arguments, str) else _as_str(arguments)
    return arguments


def tool_name(call: Any) -> str:
    """The name of one tool call in either shape (``{"function": {"name"}}`` or ``{"name"}``);
    ``""`` if it has none (so an allow-list policy still blocks it)."""
    name = _get(_get(call, "function"), "name")
    if name is None:
        name = _get(call, "name")
    if name is None:
        return ""
    return _as_str(name)


def _calls_of(call: Any) -> list[ToolCall]:
    """One ToolCall per distinct name an entry carries. The modern shape runs
    ``function.name``, the legacy ``function_call`` runs the top-level ``name``: an entry with
    both (a decoy in one of them) has both checked. The top-level name comes first."""
    if call is None:
        return []
    function = _get(call, "function")
    candidates: list[tuple[Any, Any]] = [(_get(call, "name"), _get(call, "arguments"))]
    if isinstance(function, str):  # {"function": "name", "arguments": ...}
        candidates.append((function, _get(call, "arguments")))
    elif function is not None:
        candidates.append((_get(function, "name"), _get(function, "arguments")))
    call_id = _get(call, "id")
    if call_id is None:
        call_id = _get(call, "call_id")
    cid = None if call_id is None else _as_str(call_id)
    calls: list[ToolCall] = []
    seen: set[str] = set()
    for name, arguments in candidates:
        if name is None or (text := _as_str(name)) in seen:
            continue
        seen.add(text)
        calls.append(ToolCall(name=text, arguments=parse_arguments(arguments), call_id=cid))
    if not calls:  # nameless: still checked, as "" (an allow list blocks it)
        source = function if function is not None and not isinstance(function, str) else call
        calls.append(ToolCall(name="", arguments=parse_arguments(_get(source, "arguments")), call_id=cid))
    return calls


def _iter_calls(value: Any) -> Iterable[Any]:
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return value
    if isinstance(value, (str, bytes, int, float, bool)):
        return ()
    if isinstance(value, Mapping):
        return (value,)
    try:  # an iterable container of calls (but not a mapping-like object with a name)
        if _get(value, "name") is None and _get(value, "function") is None:
            return list(value)
    except Exception:
        return ()
    return (value,)


def extract_tool_calls(message: Any) -> list[ToolCall]:
    """Every tool call in a message or reply: each entry of ``tool_calls`` and the legacy
    ``function_call``. Dicts or objects; never raises."""
    calls: list[ToolCall] = []
    try:
        for entry in _iter_calls(_get(message, "tool_calls")):
            try:
                calls.extend(_calls_of(entry))
            except Exception:
                calls.append(ToolCall(name=""))
        function_call = _get(message, "function_call")
        if function_call is not None and not isinstance(function_call, (str, bytes, int, float, bool)):
            try:
                calls.extend(_calls_of(function_call))
            except Exception:
                calls.append(ToolCall(name=""))
        elif isinstance(function_call, str) and function_call:
            calls.append(ToolCall(name=function_call))
    except Exception:
        calls.append(ToolCall(name=""))
    return calls


def _tool_output(source: Any, text: str) -> ToolOutput:
    """A tool result with the name and call id its message (or ``tool_responses`` entry) carries."""
    call_id = _get(source, "tool_call_id")
    name = _get(source, "name")
    return ToolOutput(
        content=text,
        name=None if name is None else _as_str(name),
        call_id=None if call_id is None else _as_str(call_id),
    )


def _requested(messages: Sequence[Any]) -> tuple[set[str], set[str]]:
    """Call ids and names of every tool call requested in the conversation."""
    ids: set[str] = set()
    names: set[str] = set()
    for message in messages:
        if _get(message, "tool_calls") is None and _get(message, "function_call") is None:
            continue
        for call in extract_tool_calls(message):
            names.add(call.name)
            if call.call_id is not None:
                ids.add(call.call_id)
    return ids, names


def _answers(result: Any, role: str | None, ids: set[str], names: set[str]) -> bool:
    """Whether a tool result answers a call requested in the conversation: by ``tool_call_id``,
    or for a legacy ``function`` result without one, by name."""
    call_id = _get(result, "tool_call_id")
    if call_id is not None:
        return _as_str(call_id) in ids
    name = _get(result, "name")
    return role == "function" and name is not None and _as_str(name) in names


def _never_own(message: Any) -> bool:
    return False


def received(
    messages: Any, is_own: Callable[[Any], bool] = _never_own, start: int = 0
) -> tuple[str | None, list[ToolOutput]]:
    """What is about to reach the model since the agent's own last message, split in two: the
    input text and the tool results.

    The walk back stops at the first message ``is_own`` recognises as the agent's own (sent by
    it); role says nothing about that (AutoGen stores any received tool-call message, or one
    with ``override_role``, as "assistant"). A tool result (role ``tool`` / ``function``, or a
    ``tool_responses`` entry) is a tool output only when it answers a call requested in the
    conversation; any other text, including tool-shaped text a sender wrote (a ``function``
    message's own content beside its ``tool_responses``, results carried by a ``user`` message,
    a ``tool`` message answering nothing), is input and gets every input check. A role ``tool``
    message's own content is skipped when it carries ``tool_responses`` (AutoGen sends only the
    entries to the model). A bare str counts as input. Messages before index ``start`` (already
    checked) are not walked, but their tool calls still make later results genuine."""
    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)):
        return None, []
    ids, names = _requested(messages)
    batches: list[tuple[list[str], list[ToolOutput]]] = []
    for message in reversed(messages[start:] if start > 0 else messages):
        if isinstance(message, str):
            batches.append(([message], []))
            continue
        if is_own(message):
            break
        texts: list[str] = []
        outputs: list[ToolOutput] = []
        batches.append((texts, outputs))
        role = _role(message)
        responses = _get(message, "tool_responses")
        carried = responses if isinstance(responses, (list, tuple)) and responses else ()
        for response in carried:
            text = content_text(_get(response, "content"))
            if text is None:
                continue
            if _answers(response, "tool", ids, names):
                outputs.append(_tool_output(response, text))
            else:
                texts.append(text)
        if role == "tool" and carried:
            continue
        text = content_text(_get(message, "content"))
        if role in ("tool", "function") and _answers(message, role, ids, names):
            if text is not None:
                outputs.append(_tool_output(message, text))
            continue
        for part in (text, _context_text(message)):
            if part:
                texts.append(part)
    texts_in_order = [text for texts, _ in reversed(batches) for text in texts]
    outputs_in_order = [output for _, outputs in reversed(batches) for output in outputs]
    return ("\n".join(texts_in_order) if texts_in_order else None), outputs_in_order
