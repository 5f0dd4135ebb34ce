"""Execlave-shaped policies as pydantic models.

The shape follows Execlave's REST API so a policy fetched from the dashboard evaluates locally
unchanged::

    {"id": "no-destructive-tools", "name": "...", "policyType": "tool_invocation",
     "enforcementMode": "block", "appliesToAgents": [], "isActive": true,
     "ruleDefinition": {"deny": ["delete_*"]}}

Every key is strict: an unknown or misspelt key (``enforcment_mode``, ``isActiv``, the snake_case
``policy_type``) is an error rather than a policy that silently does something else. Only the
metadata keys in :data:`METADATA_KEYS` are accepted and ignored.

Limits (checked before anything is compiled, so a policy cannot make compiling slow or large):
at most :data:`MAX_PATTERNS` patterns (or globs per list) per policy, :data:`MAX_PATTERN_CHARS`
characters of them in all, and :data:`MAX_PROGRAM_SIZE` RE2 instructions once compiled.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Any, Literal

import re2
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    TypeAdapter,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from .pii import PiiType

EnforcementMode = Literal["block", "warn", "monitor"]
Severity = Literal["low", "medium", "high", "critical"]


MAX_PATTERNS = 1_000
"""Patterns of an ``injection_scan`` policy, and globs in each ``allow`` / ``deny`` list."""
MAX_PATTERN_CHARS = 32 * 1024
"""Characters of the patterns of one policy (or of one glob list) together."""
MAX_PROGRAM_SIZE = 100_000
"""RE2 instructions the patterns of one policy may compile to, together."""
MAX_PROGRAM_MEMORY = 8 << 20
"""RE2's memory budget for compiling one expression (RE2's own default, made explicit)."""

METADATA_KEYS: frozenset[str] = frozenset({"createdAt", "updatedAt"})
"""Top-level keys Execlave's API adds to a policy; accepted and ignored."""


def _describe(pattern: str) -> str:
    return repr(pattern) if len(pattern) <= 80 else f"{pattern[:60]!r}... ({len(pattern):,} characters)"


def compile_pattern(pattern: str) -> re2._Regexp:
    """Compile a policy pattern with RE2, case-insensitively. RE2 has no backreferences or
    lookaround; such a pattern, or one too large once compiled, raises ValueError saying why."""
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    options.max_mem = MAX_PROGRAM_MEMORY
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        if "too large" in reason:
            raise ValueError(
                f"{_describe(pattern)} is too large once compiled (over RE2's "
                f"{MAX_PROGRAM_MEMORY >> 20} MiB program budget); use smaller repetition counts "
                "or split it"
            ) from None
        raise ValueError(
            f"RE2 cannot compile {_describe(pattern)}: {reason} (RE2 has no backreferences or lookaround)"
        ) from None


class _Budget:
    """RE2 instructions still available to one policy or one document."""

    __slots__ = ("exceeded", "fix", "limit", "used", "what")

    def __init__(self, limit: int, what: str, fix: str) -> None:
        self.limit, self.used, self.what, self.fix, self.exceeded = limit, 0, what, fix, False


_BUDGETS: ContextVar[tuple[_Budget, ...]] = ContextVar("execlave_program_budgets", default=())


@contextmanager
def program_budget(limit: int, what: str, fix: str) -> Iterator[None]:
    """While active, every compiled pattern is charged to a budget of ``limit`` RE2 instructions;
    the pattern that overdraws it is an error naming ``what`` (e.g. "the policies of this file")
    and saying how to ``fix`` it, and later patterns are not compiled at all."""
    token = _BUDGETS.set((*_BUDGETS.get(), _Budget(limit, what, fix)))
    try:
        yield
    finally:
        _BUDGETS.reset(token)


def _re2_pattern(value: str) -> str:
    if not value:
        raise ValueError("a pattern must not be empty (it would match everything)")
    budgets = _BUDGETS.get()
    if any(b.exceeded for b in budgets):
        return value  # already reported once; compiling more would only cost time
    size = compile_pattern(value).programsize
    for budget in budgets:
        budget.used += size
        if budget.used > budget.limit:
            budget.exceeded = True
            raise ValueError(
                f"{budget.what} compile to more than {budget.limit:,} RE2 instructions (at this "
                f"pattern); {budget.fix}"
            )
    return value


def _bounded(values: Any, what: str) -> Any:
    """Count and total length of a pattern or glob list, checked before any item is compiled."""
    if isinstance(values, Sequence) and not isinstance(values, str):
        if len(values) > MAX_PATTERNS:
            raise ValueError(
                f"{len(values):,} {what}; at most {MAX_PATTERNS:,} per policy (split the policy)"
            )
        chars = sum(len(v) for v in values if isinstance(v, str))
        if chars > MAX_PATTERN_CHARS:
            raise ValueError(
                f"{chars:,} characters of {what}; at most {MAX_PATTERN_CHARS:,} characters of "
                f"{what} per list (split the policy)"
            )
    return values


def _glob(value: str) -> str:
    if not value.strip():
        raise ValueError("a tool name pattern must not be empty")
    return value


_CONTROL = re2.compile(r"[\x00-\x1f\x7f-\x9f\p{Cf}\x{2028}\x{2029}]")


def _no_controls(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError(
            "contains a control or invisible formatting character (escape sequences, bidi overrides, "
            "zero-width characters); ids and names are shown in terminals, logs and traces"
        )
    return value


Re2Pattern = Annotated[str, AfterValidator(_re2_pattern)]
Label = Annotated[str, AfterValidator(_no_controls)]
Glob = Annotated[str, AfterValidator(_glob)]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ToolInvocationRule(_Rule):
    """``allow`` / ``deny`` lists of tool-name globs (``*``, ``?``, ``[abc]``). Deny wins; when
    ``allow`` is non-empty, every tool not on it is blocked."""

    allow: tuple[Glob, ...] = ()
    deny: tuple[Glob, ...] = ()

    @field_validator("allow", "deny", mode="before")
    @classmethod
    def _bounded_globs(cls, value: Any) -> Any:
        return _bounded(value, "globs")

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

    @field_validator("patterns", mode="before")
    @classmethod
    def _bounded_patterns(cls, value: Any) -> Any:
        return _bounded(value, "patterns")

    @model_validator(mode="wrap")
    @classmethod
    def _program_budget(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        fix = "simplify the patterns or split them over several policies"
        with program_budget(MAX_PROGRAM_SIZE, "the patterns of this policy", fix):
            return handler(data)

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

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Label = Field(min_length=1)
    name: Label = ""
    enforcement_mode: EnforcementMode = Field(default="block", alias="enforcementMode")
    applies_to_agents: tuple[str, ...] = Field(default=(), alias="appliesToAgents")
    is_active: bool = Field(default=True, alias="isActive")
    severity: Severity = "high"
    description: str | None = None
    policy_type: str = Field(alias="policyType")
    rule: _Rule = Field(alias="ruleDefinition")

    @model_validator(mode="before")
    @classmethod
    def _drop_metadata(cls, data: Any) -> Any:
        if isinstance(data, dict) and METADATA_KEYS.intersection(data):
            return {k: v for k, v in data.items() if k not in METADATA_KEYS}
        return data

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
RULE_MODELS: dict[str, type[_Rule]] = {
    "tool_invocation": ToolInvocationRule,
    "injection_scan": InjectionScanRule,
    "pii_access": PiiAccessRule,
    "rate_limit": RateLimitRule,
}
"""The supported policy types and the model of each one's ``ruleDefinition``: the one list (the
loader's messages, its key suggestions and the documentation derive from it; ``AnyPolicy`` above and
the engine's compilers are checked against it by ``tests/policy/test_policy_types.py``)."""
POLICY_TYPES: tuple[str, ...] = tuple(RULE_MODELS)
POLICY_KEYS: tuple[str, ...] = tuple(f.alias or name for name, f in Policy.model_fields.items())
"""The top-level keys of a policy, as written in a file (camelCase)."""
