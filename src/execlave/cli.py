"""The ``execlave`` command: validate policy files and try a decision offline.

    execlave policy validate FILE [FILE ...]
    execlave policy check FILE --agent ID (--input TEXT | --tool NAME [--args JSON])

Exit codes: 0 valid / allowed, 1 invalid policy file or arguments, 2 usage error, 3 blocked.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__
from .client import validate_agent_id
from .errors import PolicyConfigError
from .policy import CheckRequest, PolicyEngine, ToolCall, load_policies

EXIT_OK, EXIT_INVALID, EXIT_BLOCKED = 0, 1, 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="execlave", description="Execlave policy tools (offline).")
    parser.add_argument("--version", action="version", version=f"execlave {__version__}")
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    policy = top.add_parser("policy", help="validate policy files or try a decision")
    sub = policy.add_subparsers(dest="action", required=True, metavar="ACTION")

    validate = sub.add_parser("validate", help="check policy files; print each error as FILE: policy / field")
    validate.add_argument("files", nargs="+", metavar="FILE")

    check = sub.add_parser("check", help="evaluate one input or tool call against a policy file")
    check.add_argument("file", metavar="FILE")
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
                print(issue, file=sys.stderr)
        else:
            print(f"{file}: ok ({len(policies)} {'policy' if len(policies) == 1 else 'policies'})")
    return status


def _check(ns: argparse.Namespace) -> int:
    try:
        agent_id = validate_agent_id(ns.agent)
    except ValueError as exc:
        print(f"error: --agent: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if ns.args is not None and ns.tool is None:
        print("error: --args goes with --tool", file=sys.stderr)
        return EXIT_INVALID
    arguments: Any = None
    if ns.args is not None:
        try:
            arguments = json.loads(ns.args)
        except json.JSONDecodeError as exc:
            print(f"error: --args is not valid JSON: {exc}", file=sys.stderr)
            return EXIT_INVALID
    try:
        engine = PolicyEngine(load_policies(ns.file))
    except PolicyConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return EXIT_INVALID
    request = CheckRequest(
        agent_id=agent_id,
        input=ns.input,
        tool_calls=(ToolCall(ns.tool, arguments),) if ns.tool is not None else (),
    )
    decision = engine.evaluate(request)  # a fresh engine has no paused agents
    if ns.json:
        print(json.dumps({"decision": decision.outcome, "violations": list(decision.violations)}, indent=2))
    else:
        print(f"decision: {decision.outcome}")
        for v in decision.violations:
            tool = f" tool={v['toolName']}" if v.get("toolName") else ""
            print(
                f"  - [{v['enforcementMode']}] {v['policyId']} ({v['policyType']}, {v['severity']}) "
                f"target={v['target']}{tool}: {v['message']}"
            )
    return EXIT_BLOCKED if decision.blocked else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    if ns.action == "validate":
        return _validate(ns.files)
    return _check(ns)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
