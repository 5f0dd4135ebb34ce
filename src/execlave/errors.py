"""The exceptions execlave raises.

Every exception raised on purpose by execlave derives from :class:`ExeclaveError`, so an
application can catch the whole family in one place and tell a policy decision
(:class:`PolicyBlockedError`, :class:`AgentPausedError`) from an operational fault
(:class:`EnforcementUnavailableError`) or a configuration mistake (:class:`PolicyConfigError`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AgentPausedError",
    "ConfigIssue",
    "EnforcementUnavailableError",
    "ExeclaveError",
    "PolicyBlockedError",
    "PolicyConfigError",
]


class ExeclaveError(Exception):
    """Base class of every error execlave raises on purpose."""


class PolicyBlockedError(ExeclaveError):
    """A policy in ``block`` mode stopped an input, a tool call or a tool output.

    ``violations`` holds one dict per violated policy with the keys ``policyId``,
    ``policyName``, ``policyType``, ``enforcementMode``, ``severity``, ``message`` and
    ``target`` (``input`` | ``tool_call`` | ``tool_output``), plus ``toolName`` when the
    target is a tool. Violations never carry raw matched PII.
    """

    def __init__(self, violations: Sequence[Mapping[str, Any]]) -> None:
        self.violations: list[dict[str, Any]] = [dict(v) for v in violations]
        super().__init__(self._describe(self.violations))

    @staticmethod
    def _describe(violations: Sequence[Mapping[str, Any]]) -> str:
        if not violations:
            return "blocked by policy"
        parts = []
        for v in violations:
            name = v.get("policyName") or v.get("policyId") or "unnamed policy"
            where = v.get("target", "input")
            if v.get("toolName"):
                where = f"{where} {v['toolName']!r}"
            parts.append(
                f"{name} [{v.get('policyType', '?')}] on {where}: {v.get('message', '')}".rstrip(": ")
            )
        noun = "policy" if len(violations) == 1 else "policies"
        return f"blocked by {len(violations)} {noun}: " + "; ".join(parts)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.violations,))


class AgentPausedError(ExeclaveError):
    """The agent's kill switch is on: it may not run until it is resumed."""

    def __init__(self, agent_id: str, reason: str | None = None) -> None:
        self.agent_id = agent_id
        self.reason = reason
        msg = f"agent {agent_id!r} is paused"
        super().__init__(f"{msg}: {reason}" if reason else msg)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.agent_id, self.reason))


class EnforcementUnavailableError(ExeclaveError):
    """Execlave could not decide, and its fail mode says not to let the call through.

    Raised when no policy set could ever be loaded, or when execlave's own enforcement
    path failed unexpectedly (the original exception is chained as ``__cause__``).
    """


@dataclass(frozen=True)
class ConfigIssue:
    """One thing wrong in a policy source: where it is, which field, and what is wrong."""

    source: str
    """The file the policy came from, or ``<policies>`` for an in-memory list."""
    policy: str
    """The policy's ``id`` when it has one, else ``#index`` (0-based) in the source."""
    field: str
    """Dotted path of the offending field inside the policy, e.g. ``ruleDefinition.patterns[2]``."""
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.policy} / {self.field}: {self.message}"


class PolicyConfigError(ExeclaveError, ValueError):
    """A policy source is invalid. ``issues`` lists every problem found, each with file,
    policy and field, so all of them can be fixed in one pass."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues: list[ConfigIssue] = list(issues)
        if len(self.issues) == 1:
            text = f"invalid policy configuration: {self.issues[0]}"
        else:
            text = f"invalid policy configuration ({len(self.issues)} problems):\n" + "\n".join(
                f"  {i}" for i in self.issues
            )
        super().__init__(text)

    @classmethod
    def single(cls, source: str, policy: str, field: str, message: str) -> PolicyConfigError:
        return cls([ConfigIssue(source, policy, field, message)])
