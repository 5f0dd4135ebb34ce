"""The exceptions execlave raises.

Every exception raised on purpose by execlave derives from :class:`ExeclaveError`. The tree
follows the published Execlave client::

    ExeclaveError
    ├── ExeclaveAuthError                 the API key was refused
    ├── EnforcementHaltError              the round stopped (catch this one)
    │   ├── PolicyBlockedError            .violations
    │   │   └── ValidatorDeniedError
    │   ├── AgentPausedError
    │   ├── PolicyDeniedError             an approver said no
    │   ├── ApprovalTimeoutError
    │   ├── ApprovalVerificationError
    │   │   └── CertificateMismatchError
    │   └── EnforcementUnavailableError   fail_closed outage
    ├── QuotaExceededError
    │   └── PlanLimitExceededError
    └── PolicyConfigError                 (also a ValueError) a policy source is invalid
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AgentPausedError",
    "ApprovalTimeoutError",
    "ApprovalVerificationError",
    "CertificateMismatchError",
    "ConfigIssue",
    "EnforcementHaltError",
    "EnforcementUnavailableError",
    "ExeclaveAuthError",
    "ExeclaveError",
    "PlanLimitExceededError",
    "PolicyBlockedError",
    "PolicyConfigError",
    "PolicyDeniedError",
    "QuotaExceededError",
    "ValidatorDeniedError",
]


class ExeclaveError(Exception):
    """Base class of every error execlave raises on purpose."""


class ExeclaveAuthError(ExeclaveError):
    """Execlave refused the API key (HTTP 401, or 403 without a policy decision)."""

    def __init__(self, message: str = "Execlave rejected the API key", status: int | None = None) -> None:
        self.status = status
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.status))


class EnforcementHaltError(ExeclaveError):
    """Base of every error that stops a round: a policy block, a paused agent, a denied,
    expired or unverifiable approval, or a fail-closed outage. Catch this for "the round stopped"."""


class PolicyBlockedError(EnforcementHaltError):
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


class ValidatorDeniedError(PolicyBlockedError):
    """A block decided by a ``custom_validator`` policy (a customer-hosted validator);
    ``validator_violations`` lists those violations."""

    def __init__(self, violations: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(violations)
        self.validator_violations = [v for v in self.violations if v.get("policyType") == "custom_validator"]


def blocked_error(violations: Sequence[Mapping[str, Any]]) -> PolicyBlockedError:
    """The most specific block error for ``violations``."""
    if any(v.get("policyType") == "custom_validator" for v in violations):
        return ValidatorDeniedError(violations)
    return PolicyBlockedError(violations)


class AgentPausedError(EnforcementHaltError):
    """The agent's kill switch is on (locally, or in Execlave): it may not run until it is resumed."""

    def __init__(self, agent_id: str, reason: str | None = None) -> None:
        self.agent_id = agent_id
        self.reason = reason
        msg = f"agent {agent_id!r} is paused"
        super().__init__(f"{msg}: {reason}" if reason else msg)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.agent_id, self.reason))


class PolicyDeniedError(EnforcementHaltError):
    """A human approver denied the approval request this round waited on."""

    def __init__(self, approval_request_id: str, reason: str | None = None) -> None:
        self.approval_request_id = approval_request_id
        self.reason = reason
        msg = f"approval request {approval_request_id!r} was denied"
        super().__init__(f"{msg}: {reason}" if reason else msg)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.approval_request_id, self.reason))


class ApprovalTimeoutError(EnforcementHaltError):
    """The approval request expired, or no decision came within ``approval_timeout``."""

    def __init__(self, approval_request_id: str) -> None:
        self.approval_request_id = approval_request_id
        super().__init__(f"approval request {approval_request_id!r} timed out")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.approval_request_id,))


class ApprovalVerificationError(EnforcementHaltError):
    """An approved request could not be verified (``POST /api/v1/approvals/{id}/verify`` failed
    or answered something unusable): no confirmation, no execution."""

    def __init__(self, approval_request_id: str, cause: str | None = None) -> None:
        self.approval_request_id = approval_request_id
        self.cause = cause
        msg = f"could not verify approval {approval_request_id!r}"
        super().__init__(f"{msg}: {cause}" if cause else msg)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.approval_request_id, self.cause))


class CertificateMismatchError(ApprovalVerificationError):
    """Execlave verified the approval and answered ``valid: false``: the approval does not cover
    this action (changed, expired or already used)."""

    def __init__(self, approval_request_id: str, cause: str | None = None) -> None:
        super().__init__(approval_request_id, cause or "the approval does not match this action")


class EnforcementUnavailableError(EnforcementHaltError):
    """Execlave could not decide, and ``enforcement_on_outage="fail_closed"`` says not to let the
    call through (or execlave's own enforcement path failed; the cause is chained).

    ``consecutive_failures`` and ``last_error`` describe the outage when it is one.
    """

    def __init__(self, message: str | int = "enforcement unavailable", last_error: str | None = None) -> None:
        self.last_error = last_error
        if isinstance(message, int):  # the published client's (consecutive_failures, last_error)
            self.consecutive_failures = message
            message = f"enforcement unavailable after {message} consecutive failure(s)"
        else:
            self.consecutive_failures = 0
        super().__init__(f"{message}: {last_error}" if last_error else message)


class QuotaExceededError(ExeclaveError):
    """The organisation's plan quota is used up (HTTP 402)."""

    def __init__(self, resource: str = "unknown", current: int = 0, max: int = 0, message: str = "") -> None:
        self.resource = resource
        self.current = current
        self.max = max
        super().__init__(message or f"plan limit reached for {resource} ({current}/{max})")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.resource, self.current, self.max, str(self)))


class PlanLimitExceededError(QuotaExceededError):
    """A plan limit stopped a call because ``plan_limit_behavior="fail_closed"``."""


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
