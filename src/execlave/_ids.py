"""Agent ids: the one rule every entry point applies (no dependencies, so ``execlave.cli`` can use it
without loading OpenTelemetry or httpx)."""

from __future__ import annotations

import re

_AGENT_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_AGENT_ID_MAX = 128


def validate_agent_id(agent_id: object) -> str:
    """Return ``agent_id`` if it is lowercase kebab-case (``ops-assistant``), else raise ValueError."""
    if isinstance(agent_id, str) and len(agent_id) <= _AGENT_ID_MAX and _AGENT_ID.fullmatch(agent_id):
        return agent_id
    hint = ""
    if isinstance(agent_id, str):
        words = re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", agent_id)
        suggestion = "-".join(w.lower() for w in words)[:_AGENT_ID_MAX].strip("-")
        if suggestion and _AGENT_ID.fullmatch(suggestion):
            hint = f" (did you mean {suggestion!r}?)"
    raise ValueError(
        f"agent_id must be lowercase kebab-case of at most {_AGENT_ID_MAX} characters, "
        f"e.g. 'ops-assistant'; got {agent_id!r}{hint}"
    )
