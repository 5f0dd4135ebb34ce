"""Pure extraction of what policies look at from classic AutoGen message shapes.

Nothing here imports AutoGen or OpenTelemetry, and nothing here raises on odd input: a reply
may be a str, a dict (``tool_calls`` / ``function_call`` possibly None), an object with those
attributes, None, or anything else. Tool names are never dropped: a call whose arguments are
malformed JSON keeps its name (arguments stay the raw string).
"""

from __future__ import annotations

import json
import re
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


def _context_text(context: Any) -> str | None:
    """String values of a message's ``context`` (classic AutoGen may format them into the
    content when ``allow_format_str_template`` is set): scanned with the content."""
    if not isinstance(context, Mapping):
        return None
    texts = [_as_str(v) for v in context.values() if v is not None]
    return "\n".join(texts) if texts else None


# Built once: ``json.loads(s, strict=...)`` builds a new decoder on every call.
_DECODERS = (json.JSONDecoder(), json.JSONDecoder(strict=False))
# What ``JSONDecoder.decode`` does for a str (skip whitespace, scan one value, only whitespace
# after it), without its two Python frames: the decoders' own scanners.
_SCANNERS = tuple(decoder.scan_once for decoder in _DECODERS)  # type: ignore[attr-defined]
_SPACE = re.compile(r"[ \t\n\r]*").match  # json.decoder's WHITESPACE (always matches)


def parse_arguments(arguments: Any) -> Any:
    """JSON-decode a string of arguments when it parses; otherwise return it unchanged."""
    if type(arguments) is str:
        # AutoGen itself accepts raw control characters in strings: strict first, then lenient.
        for scan in _SCANNERS:
            try:
                value, end = scan(arguments, _SPACE(arguments, 0).end())  # type: ignore[union-attr]
            except (StopIteration, ValueError, RecursionError):  # no value / malformed
                continue
            if _SPACE(arguments, end).end() == len(arguments):  # type: ignore[union-attr]
                return value
        return arguments
    if isinstance(arguments, (str, bytes, bytearray)):
        # AutoGen itself accepts raw control characters in strings: strict first, then lenient.
        for decoder in _DECODERS:
            try:
                if isinstance(arguments, str):
                    return decoder.decode(arguments)
                return json.loads(arguments, strict=decoder.strict)
            except (ValueError, TypeError, RecursionError):
                continue
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


def _calls_of(call: Any, parse: bool = True) -> list[ToolCall]:
    """One ToolCall per distinct name an entry carries. The modern shape runs
    ``function.name``, the legacy ``function_call`` runs the top-level ``name``: an entry with
    both (a decoy in one of them) has both checked. The top-level name comes first."""
    if call is None:
        return []
    if type(call) is dict:  # the common case, read directly
        function = call.get("function")
        arguments = call.get("arguments")
        if type(function) is dict and call.get("name") is None:  # the modern shape, one name
            name = function.get("name")
            if type(name) is str:
                call_id = call.get("id")
                if call_id is None:
                    call_id = call.get("call_id")
                cid = None if call_id is None else call_id if type(call_id) is str else _as_str(call_id)
                return [ToolCall(name, parse_arguments(function.get("arguments")) if parse else None, cid)]
        candidates: list[tuple[Any, Any]] = [(call.get("name"), arguments)]
        call_id = call.get("id")
        if call_id is None:
            call_id = call.get("call_id")
    else:
        function = _get(call, "function")
        arguments = _get(call, "arguments")
        candidates = [(_get(call, "name"), arguments)]
        call_id = _get(call, "id")
        if call_id is None:
            call_id = _get(call, "call_id")
    if isinstance(function, str):  # {"function": "name", "arguments": ...}
        candidates.append((function, arguments))
    elif type(function) is dict:
        candidates.append((function.get("name"), function.get("arguments")))
    elif function is not None:
        candidates.append((_get(function, "name"), _get(function, "arguments")))
    cid = None if call_id is None else call_id if type(call_id) is str else _as_str(call_id)
    calls: list[ToolCall] = []
    seen: set[str] = set()
    for name, arguments in candidates:
        if name is None or (text := name if type(name) is str else _as_str(name)) in seen:
            continue
        seen.add(text)
        calls.append(ToolCall(text, parse_arguments(arguments) if parse else None, cid))
    if not calls:  # nameless: still checked, as "" (an allow list blocks it)
        source = function if function is not None and not isinstance(function, str) else call
        arguments = parse_arguments(_get(source, "arguments")) if parse else None
        calls.append(ToolCall(name="", arguments=arguments, call_id=cid))
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


def extract_tool_calls(message: Any, *, parse: bool = True) -> list[ToolCall]:
    """Every tool call in a message or reply: each entry of ``tool_calls`` and the legacy
    ``function_call``. Dicts or objects; never raises. ``parse=False``: names and ids only
    (arguments None), for spans that check nothing."""
    if type(message) is dict:  # the common case, read directly
        entries = message.get("tool_calls")
        if entries is None and message.get("function_call") is None:
            return []  # a message without calls
        if type(entries) is not list:
            entries = _iter_calls(entries)
    else:
        entries = _iter_calls(_get(message, "tool_calls"))
    calls: list[ToolCall] = []
    try:
        for entry in entries:
            try:
                calls.extend(_calls_of(entry, parse))
            except Exception:
                calls.append(ToolCall(name=""))
        function_call = (
            message.get("function_call") if type(message) is dict else _get(message, "function_call")
        )
        if function_call is not None and not isinstance(function_call, (str, bytes, int, float, bool)):
            try:
                calls.extend(_calls_of(function_call, parse))
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


_NONE: list[Any] = []  # shared, never appended to: "no tool_responses" without a new list
_DICT_ONLY = {dict}
_PLAIN_TYPES = frozenset({str, type(None)})
_TOOL_KEYS = frozenset({"tool_responses", "context"})  # keys that make a message more than its text
_TOOL_ROLES = frozenset({"tool", "function"})
# From this many messages on, plain histories are read with whole-list operations (cheaper per
# message than the walk, dearer to start); both give the same result.
_BULK_FROM = 6


def _plain_text(
    messages: list[Any], own: Mapping[int, Any] | None
) -> tuple[str | None, list[ToolOutput]] | None:
    """What :func:`received` returns for a list of plain messages, read with whole-list operations
    instead of the walk's Python steps per message; None when anything is not plain (the walk
    then decides). Plain: exact dicts (a subclass may read differently) with a ``role`` and a
    ``content``, no ``tool_responses`` or ``context`` key, a str role other than ``tool`` /
    ``function``, a str or None content. Such messages carry no tool output and their input is
    exactly their non-empty contents, in order. The agent's own last message ends the window as
    it ends the walk: ``own`` holds every message it names, so no other live message has its id."""
    if own:
        ids = list(map(id, messages))
        if not own.keys().isdisjoint(ids):
            last = len(ids) - 1
            while ids[last] not in own:
                last -= 1
            if own.get(ids[last]) is not messages[last] or isinstance(messages[last], str):
                return None  # not where the walk stops (it never takes a str for the agent's own)
            messages = messages[last + 1 :]
            if len(messages) < _BULK_FROM:
                return None  # a short tail: the walk is cheaper
    if set(map(type, messages)) != _DICT_ONLY or not _TOOL_KEYS.isdisjoint(set().union(*messages)):
        return None
    try:
        roles = {message["role"] for message in messages}
        contents = [message["content"] for message in messages]
    except (KeyError, TypeError):  # no role / content, an unhashable role
        return None
    for role in roles:
        if type(role) is not str or role in _TOOL_ROLES:
            return None
    if not _PLAIN_TYPES.issuperset(set(map(type, contents))):
        return None
    texts = list(filter(None, contents))
    return ("\n".join(texts) if texts else None), []


def received(
    messages: Any,
    is_own: Callable[[Any], bool] = _never_own,
    start: int = 0,
    *,
    own: Mapping[int, Any] | None = None,
) -> tuple[str | None, list[ToolOutput]]:
    """What is about to reach the model since the agent's own last message, split in two: the
    input text and the tool results.

    The walk back stops at the first message ``is_own`` recognises as the agent's own (sent by
    it); role says nothing about that (AutoGen stores any received tool-call message, or one
    with ``override_role``, as "assistant"). ``own`` (``{id(message): message}``) says the same
    without a call per message: a message is the agent's own when ``own[id(message)] is message``.
    A tool result (role ``tool`` / ``function``, or a ``tool_responses`` entry) is a tool output
    only when it answers a call requested in the conversation; any other text, including
    tool-shaped text a sender wrote (a ``function`` message's own content beside its
    ``tool_responses``, results carried by a ``user`` message, a ``tool`` message answering
    nothing), is input and gets every input check. A role ``tool`` message's own content is
    skipped when it carries ``tool_responses`` (AutoGen sends only the entries to the model). A
    bare str counts as input. Messages before index ``start`` (already checked) are not walked,
    but their tool calls still make later results genuine."""
    if type(messages) is list:
        if is_own is _never_own and len(messages) - start >= _BULK_FROM:
            plain = _plain_text(messages[start:] if start > 0 else messages, own)
            if plain is not None:
                return plain
    elif not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)):
        return None, []
    requested: tuple[set[str], set[str]] | None = None  # built on the first tool result only
    # Walking backwards, each message's parts are added in reverse; one reversal at the end
    # restores the conversation's order (and each message's own order).
    texts: list[str] = []
    outputs: list[ToolOutput] = []
    for message in reversed(messages[start:] if start > 0 else messages):
        if isinstance(message, str):
            texts.append(message)
            continue
        if own and own.get(id(message)) is message:
            break
        if is_own is not _never_own and is_own(message):
            break
        if type(message) is dict:  # the common case: no exception possible, no ABC checks
            role = message.get("role")
            content = message.get("content")
            # Rare keys: an `in` test costs less than a .get call (per message, every round).
            responses = message["tool_responses"] if "tool_responses" in message else None  # noqa: SIM401
            context = message["context"] if "context" in message else None  # noqa: SIM401
        else:
            role = _get(message, "role")
            responses = _get(message, "tool_responses")
            content = _get(message, "content")
            context = _get(message, "context")
        if not isinstance(role, str):
            role = None
        # Parts are added last first (see above); tool_responses entries come before the content.
        carried_texts: list[str] = _NONE
        carried_outputs: list[ToolOutput] = _NONE
        if isinstance(responses, (list, tuple)) and responses:
            carried_texts, carried_outputs = [], []
            for response in responses:
                text = content_text(_get(response, "content"))
                if text is None:
                    continue
                if requested is None:
                    requested = _requested(messages)
                if _answers(response, "tool", *requested):
                    carried_outputs.append(_tool_output(response, text))
                else:
                    carried_texts.append(text)
            if role == "tool":
                texts.extend(reversed(carried_texts))
                outputs.extend(reversed(carried_outputs))
                continue
        text = content if type(content) is str else content_text(content)
        answered = False
        if role == "tool" or role == "function":
            if requested is None:
                requested = _requested(messages)
            answered = _answers(message, role, *requested)
        if answered:
            if text is not None:
                outputs.append(_tool_output(message, text))
        else:
            if context is not None:
                extra = _context_text(context)
                if extra:
                    texts.append(extra)
            if text:
                texts.append(text)
        if carried_texts:
            texts.extend(reversed(carried_texts))
        if carried_outputs:
            outputs.extend(reversed(carried_outputs))
    texts.reverse()
    outputs.reverse()
    return ("\n".join(texts) if texts else None), outputs
