"""What the policy engine is asked and what it answers: framework-neutral value types.

Adapters translate framework shapes (AutoGen messages, tool-call dicts) into a
:class:`CheckRequest`; the engine answers with a :class:`Decision`. Nothing here knows about
OpenTelemetry or AutoGen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["allow", "warn", "block"]
Violation = dict[str, Any]
"""``policyId, policyName, policyType, enforcementMode, severity, message, target`` (+ ``toolName``)."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool the agent asked to run (or is about to run)."""

    name: str
    arguments: Any = None
    """Parsed arguments (dict, list, scalar) when they parsed; the raw string otherwise; None if absent."""
    call_id: str | None = None

    def __init__(self, name: str, arguments: Any = None, call_id: str | None = None) -> None:
        _set_tc_name(self, name)
        _set_tc_arguments(self, arguments)
        _set_tc_call_id(self, call_id)


@dataclass(frozen=True, slots=True)
class ToolOutput:
    """What a tool returned, on its way back into the model's context."""

    content: str
    name: str | None = None
    call_id: str | None = None

    def __init__(self, content: str, name: str | None = None, call_id: str | None = None) -> None:
        _set_to_content(self, content)
        _set_to_name(self, name)
        _set_to_call_id(self, call_id)


@dataclass(frozen=True, slots=True)
class CheckRequest:
    """One question to the engine. Every part is optional except the agent.

    - ``input`` is checked by ``injection_scan`` (``scan_input``) and ``pii_access`` policies.
    - ``tool_calls`` are checked by ``tool_invocation`` policies (name) and ``pii_access``
      policies (arguments).
    - ``tool_outputs`` are checked by ``injection_scan`` policies with ``scan_output``.
    - ``count_request`` makes the check count against ``rate_limit`` policies (adapters set it
      once per reply round, on the round's first check).
    """

    agent_id: str
    input: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_outputs: tuple[ToolOutput, ...] = ()
    environment: str | None = None
    metadata: Mapping[str, Any] | None = None
    count_request: bool = False

    def __init__(
        self,
        agent_id: str,
        input: str | None = None,
        tool_calls: tuple[ToolCall, ...] = (),
        tool_outputs: tuple[ToolOutput, ...] = (),
        environment: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        count_request: bool = False,
    ) -> None:
        _set_cr_agent_id(self, agent_id)
        _set_cr_input(self, input)
        _set_cr_tool_calls(self, tool_calls)
        _set_cr_tool_outputs(self, tool_outputs)
        _set_cr_environment(self, environment)
        _set_cr_metadata(self, metadata)
        _set_cr_count_request(self, count_request)


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer: ``block`` if any block-mode policy was violated, else ``warn`` if
    any warn-mode policy was, else ``allow``. ``monitor``-mode violations are listed in
    ``violations`` (to be recorded) but never change the outcome."""

    outcome: Outcome
    violations: tuple[Violation, ...] = ()
    policy_set_version: int = 0
    evaluated_policy_ids: tuple[str, ...] = field(default=(), compare=False)
    bypasses: tuple[str, ...] = field(default=(), compare=False)
    """Why a check passed without being decided (``enforcement_on_outage="fail_open"``); recorded
    on the span and counted, never silent."""

    def __init__(
        self,
        outcome: Outcome,
        violations: tuple[Violation, ...] = (),
        policy_set_version: int = 0,
        evaluated_policy_ids: tuple[str, ...] = (),
        bypasses: tuple[str, ...] = (),
    ) -> None:
        _set_d_outcome(self, outcome)
        _set_d_violations(self, violations)
        _set_d_policy_set_version(self, policy_set_version)
        _set_d_evaluated_policy_ids(self, evaluated_policy_ids)
        _set_d_bypasses(self, bypasses)

    @property
    def allowed(self) -> bool:
        return self.outcome != "block"

    @property
    def blocked(self) -> bool:
        return self.outcome == "block"

    @property
    def blocking_violations(self) -> list[Violation]:
        return [v for v in self.violations if v.get("enforcementMode") == "block"]

    @property
    def warnings(self) -> list[Violation]:
        return [v for v in self.violations if v.get("enforcementMode") == "warn"]

    @property
    def violated_policy_ids(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for v in self.violations:
            seen.setdefault(str(v.get("policyId")), None)
        return tuple(seen)

    @staticmethod
    def merge(decisions: list[Decision]) -> Decision:
        """Combine the decisions of several checks in one round (worst outcome wins)."""
        if not decisions:
            return ALLOW
        # One loop, no generator expressions: this runs on every span with a second check.
        rank = _RANK
        outcome: Outcome = decisions[0].outcome
        top = rank[outcome]
        version = decisions[0].policy_set_version
        found: list[Violation] = []
        ids: dict[str, None] = {}
        passed: list[str] = []
        for d in decisions:
            level = rank[d.outcome]
            if level > top:
                outcome, top = d.outcome, level
            if d.violations:
                found.extend(d.violations)
            if d.evaluated_policy_ids:
                ids.update(dict.fromkeys(d.evaluated_policy_ids))
            if d.bypasses:
                passed.extend(d.bypasses)
            if d.policy_set_version > version:
                version = d.policy_set_version
        violations, bypasses = tuple(found), tuple(passed)
        return Decision(outcome, violations, version, tuple(ids), bypasses)


# The classes' own ``__init__``s (the dataclass ones call ``object.__setattr__`` once per field,
# by name): each field is stored through its slot descriptor, the value types are built on every
# check. Assigning an attribute afterwards still raises ``FrozenInstanceError``.
def _setters(cls: type, *fields: str) -> tuple[Callable[[Any, Any], None], ...]:
    return tuple(cls.__dict__[f].__set__ for f in fields)


_set_tc_name, _set_tc_arguments, _set_tc_call_id = _setters(ToolCall, "name", "arguments", "call_id")
_set_to_content, _set_to_name, _set_to_call_id = _setters(ToolOutput, "content", "name", "call_id")
(
    _set_cr_agent_id,
    _set_cr_input,
    _set_cr_tool_calls,
    _set_cr_tool_outputs,
    _set_cr_environment,
    _set_cr_metadata,
    _set_cr_count_request,
) = _setters(
    CheckRequest,
    "agent_id",
    "input",
    "tool_calls",
    "tool_outputs",
    "environment",
    "metadata",
    "count_request",
)
(
    _set_d_outcome,
    _set_d_violations,
    _set_d_policy_set_version,
    _set_d_evaluated_policy_ids,
    _set_d_bypasses,
) = _setters(Decision, "outcome", "violations", "policy_set_version", "evaluated_policy_ids", "bypasses")

ALLOW = Decision("allow")
_RANK: dict[str, int] = {"allow": 0, "warn": 1, "block": 2}
