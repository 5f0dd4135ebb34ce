"""Every private of classic AutoGen (pyautogen 0.2.x, ag2 below 1.0) the classic adapter touches,
in one place. ``tests/autogen_classic/test_compat_classic.py`` checks each against the installed
release, so a release that moves one fails there, naming it.

Tested against: pyautogen 0.2.35, ag2 0.3.2 and ag2 0.14.0 (the nox ``classic`` lines).
"""

from __future__ import annotations

from typing import Any

# Private methods the adapter wraps on the instance (next to public ones).
PATCHED_PRIVATES = (
    "_append_oai_message",  # every stored message: tells the agent's own messages from received ones
    "_reflection_with_llm",  # summary_method="reflection_with_llm": a model call outside any reply
    "_summarize_chat",  # where AutoGen swallows an exception raised in a summary
)
MESSAGE_STORE = "_oai_messages"  # {conversation partner: [messages]}
FORMAT_JSON = "_format_json_str"  # AutoGen's repair of tool-call arguments before json.loads
REPLY_FUNCS = "_reply_func_list"  # [{"reply_func", "config", "init_config", ...}]


def has_message_store(agent: object) -> bool:
    """Whether ``agent`` keeps the classic per-partner message store (the classic shape)."""
    return hasattr(agent, MESSAGE_STORE)


def stored_messages(agent: Any, partner: Any) -> Any:
    """The messages ``agent`` holds for ``partner`` (raises like a dict when there are none)."""
    return getattr(agent, MESSAGE_STORE)[partner]


def repair_arguments(agent: Any, raw: str) -> str:
    """Tool-call arguments as AutoGen will ``json.loads`` them."""
    repaired: str = getattr(agent, FORMAT_JSON)(raw)
    return repaired


def reply_func_configs(agent: Any) -> list[Any]:
    """The ``config`` and ``init_config`` of each registered reply function (a group chat manager
    keeps copies of its group chat there)."""
    entries = getattr(agent, REPLY_FUNCS, None)
    found: list[Any] = []
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict):
            found.extend((entry.get("config"), entry.get("init_config")))
    return found
