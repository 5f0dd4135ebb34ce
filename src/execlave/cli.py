"""The ``execlave`` command: validate policy files and try a decision offline.

    execlave policy validate FILE [FILE ...]
    execlave policy check [FILE ...] [--baseline] --agent ID (--input TEXT | --tool NAME [--args JSON])

Exit codes: 0 valid / allowed, 1 invalid policy file or arguments, 2 usage error, 3 blocked.
Everything printed has its control characters escaped (``\\x1b``), so a policy file cannot drive
the terminal.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from . import __version__
from ._ids import validate_agent_id
from ._terminal import printable
from .errors import ConfigIssue, PolicyConfigError
from .policy import CheckRequest, PolicyEngine, ToolCall, baseline_policies, load_policies
from .policy.engine import normalize_tool_name
from .policy.normalize import normalize_text
from .policy.schema import InjectionScanPolicy, PiiAccessPolicy, Policy, ToolInvocationPolicy, compile_pattern

EXIT_OK, EXIT_INVALID, EXIT_BLOCKED = 0, 1, 3
BASELINE = "execlave/policy/baseline.yaml"


def _say(text: str, stream: TextIO | None = None) -> None:
    print(printable(text), file=stream or sys.stdout)


def _complain(text: str) -> None:
    _say(text, sys.stderr)


class _Parser(argparse.ArgumentParser):
    """argparse with its error messages (which quote the arguments) escaped."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {printable(message)}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="execlave", description="Execlave policy tools (offline).")
    parser.add_argument("--version", action="version", version=f"execlave {__version__}")
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    policy = top.add_parser("policy", help="validate policy files or try a decision")
    sub = policy.add_subparsers(dest="action", required=True, metavar="ACTION")

    validate = sub.add_parser("validate", help="check policy files; print each error as FILE: policy / field")
    validate.add_argument("files", nargs="+", metavar="FILE")

    check = sub.add_parser("check", help="evaluate one input or tool call against policy files")
    check.add_argument("files", nargs="*", metavar="FILE", help="policy files, enforced together")
    check.add_argument("--baseline", action="store_true", help="also enforce the bundled baseline")
    check.add_argument("--agent", required=True, metavar="ID", help="agent id, lowercase kebab-case")
    what = check.add_mutually_exclusive_group(required=True)
    what.add_argument("--input", metavar="TEXT", help="a user input to check")
    what.add_argument("--tool", metavar="NAME", help="a tool call to check")
    check.add_argument("--args", metavar="JSON", help="the tool call's arguments as JSON (with --tool)")
    check.add_argument("--json", action="store_true", help="print the decision as JSON")
    return parser


def _validate(files: Sequence[str]) -> int:
    status = EXIT_OK
    for file in files:
        try:
            policies = load_policies(file)
        except PolicyConfigError as exc:
            status = EXIT_INVALID
            for issue in exc.issues:
                _complain(str(issue))
        else:
            if policies:
                _say(f"{file}: ok ({len(policies)} {'policy' if len(policies) == 1 else 'policies'})")
            else:
                _say(f"{file}: ok (0 policies, allowEmpty: true): enforces nothing")
    return status


def _load_all(files: Sequence[str], baseline: bool) -> list[Policy]:
    """The policies of every file (and the baseline), each id once across all of them. Raises
    PolicyConfigError listing the problems of every file."""
    policies: list[Policy] = []
    issues: list[ConfigIssue] = []
    origin: dict[str, str] = {}
    sources: list[tuple[str, Any]] = [(BASELINE, None)] if baseline else []
    sources += [(file, file) for file in files]
    for name, file in sources:
        try:
            loaded = baseline_policies() if file is None else load_policies(file)
        except PolicyConfigError as exc:
            issues.extend(exc.issues)
            continue
        for policy in loaded:
            if policy.id in origin:
                issues.append(
                    ConfigIssue(
                        name, printable(policy.id), "id", f"duplicate id (also in {origin[policy.id]})"
                    )
                )
                continue
            origin[policy.id] = name
            policies.append(policy)
    if issues:
        raise PolicyConfigError(issues)
    return policies


def _what_matched(policy: Policy | None, violation: dict[str, Any], request: CheckRequest) -> str | None:
    """Which field of the policy matched, re-derived here for the reader (the engine's message
    says what was found, not which rule entry found it)."""
    if isinstance(policy, InjectionScanPolicy) and violation.get("target") == "input" and request.input:
        text = normalize_text(request.input)
        for index, pattern in enumerate(policy.rule.patterns):
            if compile_pattern(pattern).search(text):
                return f"matched ruleDefinition.patterns[{index}]: {pattern!r}"
    elif isinstance(policy, ToolInvocationPolicy) and violation.get("toolName") is not None:
        name = normalize_tool_name(str(violation["toolName"]))
        for index, glob in enumerate(policy.rule.deny):
            if fnmatch.fnmatchcase(name, normalize_tool_name(glob)):
                return f"matched ruleDefinition.deny[{index}]: {glob!r}"
        if policy.rule.allow:
            return f"not on ruleDefinition.allow: {', '.join(repr(g) for g in policy.rule.allow)}"
    elif isinstance(policy, PiiAccessPolicy) and violation.get("piiTypes"):
        return f"ruleDefinition.denied_pii_types: {', '.join(violation['piiTypes'])} found"
    return None


def _check(ns: argparse.Namespace) -> int:
    try:
        agent_id = validate_agent_id(ns.agent)
    except ValueError as exc:
        _complain(f"error: --agent: {exc}")
        return EXIT_INVALID
    if ns.args is not None and ns.tool is None:
        _complain("error: --args goes with --tool")
        return EXIT_INVALID
    if not ns.files and not ns.baseline:
        _complain("error: give at least one policy FILE, or --baseline for the bundled baseline")
        return EXIT_INVALID
    arguments: Any = None
    if ns.args is not None:
        try:
            arguments = json.loads(ns.args)
        except json.JSONDecodeError as exc:
            _complain(f"error: --args is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")
            return EXIT_INVALID
    try:
        policies = _load_all(ns.files, ns.baseline)
    except PolicyConfigError as exc:
        for issue in exc.issues:
            _complain(str(issue))
        return EXIT_INVALID
    request = CheckRequest(
        agent_id=agent_id,
        input=ns.input,
        tool_calls=(ToolCall(ns.tool, arguments),) if ns.tool is not None else (),
    )
    decision = PolicyEngine(policies).evaluate(request)  # a fresh engine has no paused agents
    if ns.json:  # json.dumps escapes every control character
        print(json.dumps({"decision": decision.outcome, "violations": list(decision.violations)}, indent=2))
    else:
        by_id = {p.id: p for p in policies}
        _say(f"decision: {decision.outcome}")
        for v in decision.violations:
            tool = f" tool={v['toolName']!r}" if v.get("toolName") is not None else ""
            _say(
                f"  - [{v['enforcementMode']}] {v['policyId']} {v['policyName']!r} "
                f"({v['policyType']}, {v['severity']}) target={v['target']}{tool}: {v['message']}"
            )
            matched = _what_matched(by_id.get(v["policyId"]), v, request)
            if matched:
                _say(f"      {matched}")
    return EXIT_BLOCKED if decision.blocked else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    if ns.action == "validate":
        return _validate(ns.files)
    return _check(ns)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
