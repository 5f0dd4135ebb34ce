"""Execlave-shaped policies as pydantic models.

The shape follows Execlave's REST API so a policy fetched from the dashboard evaluates locally
unchanged::

    {"id": "no-destructive-tools", "name": "...", "policyType": "tool_invocation",
     "enforcementMode": "block", "appliesToAgents": [], "isActive": true,
     "ruleDefinition": {"deny": ["delete_*"]}}

Unknown top-level keys (timestamps, owners, ... from the API) are ignored; ``ruleDefinition``
is strict, so a misspelt rule key is an error rather than a policy that silently does nothing.
"""

from __future__ import annotations

from typing import Annotated, Literal

import re2
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PositiveInt, TypeAdapter, model_validator

from .pii import PiiType

__all__ = [
    "POLICY_ADAPTER",
    "POLICY_TYPES",
    "AnyPolicy",
    "EnforcementMode",
    "InjectionScanPolicy",
    "InjectionScanRule",
    "PiiAccessPolicy",
    "PiiAccessRule",
    "Policy",
    "RateLimitPolicy",
    "RateLimitRule",
    "Severity",
    "ToolInvocationPolicy",
    "ToolInvocationRule",
    "compile_pattern",
]

EnforcementMode = Literal["block", "warn", "monitor"]
Severity = Literal["low", "medium", "high", "critical"]


def compile_pattern(pattern: str) -> re2._Regexp:
    """Compile a policy pattern with RE2, case-insensitively. RE2 has no backreferences or
    lookaround; such a pattern raises ValueError with RE2's reason."""
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(
            f"RE2 cannot compile {pattern!r}: {reason} (RE2 has no backreferences or lookaround)"
        ) from None


def _re2_pattern(value: str) -> str:
    if not value:
        raise ValueError("a pattern must not be empty (it would match everything)")
    compile_pattern(value)
    return value


def _glob(value: str) -> str:
    if not value.strip():
        raise ValueError("a tool name pattern must not be empty")
    return value


Re2Pattern = Annotated[str, AfterValidator(_re2_pattern)]
Glob = Annotated[str, AfterValidator(_glob)]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ToolInvocationRule(_Rule):
    """``allow`` / ``deny`` lists of tool-name globs (``*``, ``?``, ``[abc]``). Deny wins; when
    ``allow`` is non-empty, every tool not on it is blocked."""

    allow: tuple[Glob, ...] = ()
    deny: tuple[Glob, ...] = ()

    @model_validator(mode="after")
    def _not_empty(self) -> ToolInvocationRule:
        if not self.allow and not self.deny:
            raise ValueError("give at least one of 'allow' or 'deny'")
        return self


class InjectionScanRule(_Rule):
    """RE2 ``patterns`` matched case-insensitively against normalised text: the user input
    (``scan_input``, default on) and tool results on their way back to the model (``scan_output``)."""

    patterns: tuple[Re2Pattern, ...] = Field(min_length=1)
    scan_input: bool = True
    scan_output: bool = False

    @model_validator(mode="after")
    def _scans_something(self) -> InjectionScanRule:
        if not self.scan_input and not self.scan_output:
            raise ValueError("scan_input and scan_output are both false: the policy would check nothing")
        return self


class PiiAccessRule(_Rule):
    """Personal data and secrets that may not appear in an input or in tool-call arguments."""

    denied_pii_types: tuple[PiiType, ...] = Field(min_length=1)


class RateLimitRule(_Rule):
    """Reply rounds allowed per agent in a sliding minute and/or hour."""

    max_per_minute: PositiveInt | None = Field(default=None, alias="maxRequestsPerMinute")
    max_per_hour: PositiveInt | None = Field(default=None, alias="maxRequestsPerHour")

    @model_validator(mode="after")
    def _has_limit(self) -> RateLimitRule:
        if self.max_per_minute is None and self.max_per_hour is None:
            raise ValueError("give maxRequestsPerMinute and/or maxRequestsPerHour")
        return self


class Policy(BaseModel):
    """A validated policy (base of every policy type): the fields all types share."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: str = Field(min_length=1)
    name: str = ""
    enforcement_mode: EnforcementMode = Field(default="block", alias="enforcementMode")
    applies_to_agents: tuple[str, ...] = Field(default=(), alias="appliesToAgents")
    is_active: bool = Field(default=True, alias="isActive")
    severity: Severity = "high"
    description: str | None = None
    policy_type: str = Field(alias="policyType")
    rule: _Rule = Field(alias="ruleDefinition")

    @model_validator(mode="after")
    def _default_name(self) -> Policy:
        if not self.name:
            object.__setattr__(self, "name", self.id)
        return self


class ToolInvocationPolicy(Policy):
    policy_type: Literal["tool_invocation"] = Field(alias="policyType")
    rule: ToolInvocationRule = Field(alias="ruleDefinition")


class InjectionScanPolicy(Policy):
    policy_type: Literal["injection_scan"] = Field(alias="policyType")
    rule: InjectionScanRule = Field(alias="ruleDefinition")


class PiiAccessPolicy(Policy):
    policy_type: Literal["pii_access"] = Field(alias="policyType")
    rule: PiiAccessRule = Field(alias="ruleDefinition")


class RateLimitPolicy(Policy):
    policy_type: Literal["rate_limit"] = Field(alias="policyType")
    rule: RateLimitRule = Field(alias="ruleDefinition")


AnyPolicy = Annotated[
    ToolInvocationPolicy | InjectionScanPolicy | PiiAccessPolicy | RateLimitPolicy,
    Field(discriminator="policy_type"),
]
"""Any supported policy; ``policyType`` picks the shape of ``ruleDefinition``."""

POLICY_ADAPTER: TypeAdapter[AnyPolicy] = TypeAdapter(AnyPolicy)
POLICY_TYPES: tuple[str, ...] = ("tool_invocation", "injection_scan", "pii_access", "rate_limit")
