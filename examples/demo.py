"""Offline demo: a two-agent ops chat governed by execlave (no API key, no network).

An ops assistant (a scripted stand-in for the model) asks an executor agent to run tools.
Policies: the bundled baseline plus examples/policies/ops.yaml. Three rounds:

1. allowed   - the assistant calls `get_disk_usage`; the executor really runs it;
2. blocked   - the assistant calls `delete_logs`; execlave blocks it, it never runs;
3. blocked   - a user input containing `rm -rf /` is blocked before the model sees it.

`console=True` prints each trace as a span tree. With OTEL_EXPORTER_OTLP_ENDPOINT set (e.g.
http://localhost:4318, the collector from docker-compose.yml) the spans are exported there too.
Exits 0 when all three outcomes happened as described, 1 otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from autogen import Agent, ConversableAgent

from execlave import Execlave
from execlave.errors import PolicyBlockedError
from execlave.integrations.autogen import instrument_autogen_agent
from execlave.policy import baseline_policies, load_policies

HERE = Path(__file__).resolve().parent
executed: list[str] = []


def get_disk_usage(host: str) -> str:
    executed.append("get_disk_usage")
    return json.dumps({"host": host, "mount": "/var", "used_percent": 91})


def delete_logs(host: str) -> str:
    executed.append("delete_logs")  # must never happen: the policy blocks it
    return "deleted"


def scripted_model(recipient: Any, messages: Any = None, sender: Any = None, config: Any = None) -> Any:
    """Stands in for the LLM: picks a reply from the last message."""
    last = (messages or [{}])[-1]
    text = str(last.get("content") or "")
    if last.get("role") == "tool" or last.get("tool_responses"):
        return True, "web-1 /var is 91% full; rotating logs is advised. TERMINATE"
    if "disk usage" in text:
        call = {"name": "get_disk_usage", "arguments": json.dumps({"host": "web-1"})}
        return True, {"content": None, "tool_calls": [{"id": "call-1", "type": "function", "function": call}]}
    if "free" in text:
        call = {"name": "delete_logs", "arguments": json.dumps({"host": "web-1"})}
        return True, {"content": None, "tool_calls": [{"id": "call-2", "type": "function", "function": call}]}
    return True, "I can help with that. TERMINATE"


def build_agents(exe: Execlave) -> tuple[ConversableAgent, ConversableAgent]:
    assistant = ConversableAgent("ops_assistant", llm_config=False, human_input_mode="NEVER")
    assistant.register_reply([Agent, None], scripted_model, position=0)
    executor = ConversableAgent(
        "executor",
        llm_config=False,
        human_input_mode="NEVER",
        code_execution_config=False,
        function_map={"get_disk_usage": get_disk_usage, "delete_logs": delete_logs},
        default_auto_reply="TERMINATE",
    )
    instrument_autogen_agent(assistant, exe, agent_id="ops-assistant", session_id="demo")
    instrument_autogen_agent(executor, exe, agent_id="ops-executor", session_id="demo")
    return assistant, executor


def run_round(label: str, executor: ConversableAgent, assistant: ConversableAgent, message: str) -> list[Any]:
    print(f"\n=== {label}: {message!r}")
    try:
        result = executor.initiate_chat(assistant, message=message, max_turns=2, silent=True)
    except PolicyBlockedError as exc:
        print("BLOCKED:", json.dumps(exc.violations, indent=2))
        return list(exc.violations)
    print("ALLOWED; last message:", result.chat_history[-1].get("content"))
    return []


def main() -> int:
    policies = [*baseline_policies(), *load_policies(HERE / "policies" / "ops.yaml")]
    with Execlave(policies=policies, console=True, service_name="execlave-demo") as exe:
        assistant, executor = build_agents(exe)
        allowed = run_round("1 allowed tool call", executor, assistant, "Check disk usage on web-1")
        blocked_tool = run_round("2 blocked tool call", executor, assistant, "Please free space on web-1")
        blocked_input = run_round("3 blocked input", executor, assistant, "clean up with rm -rf / on web-1")
        exe.flush()

    ok = (
        not allowed
        and executed == ["get_disk_usage"]
        and [v.get("toolName") for v in blocked_tool] == ["delete_logs"]
        and [v.get("target") for v in blocked_input] == ["input"]
    )
    print("\n=== summary")
    print(f"tools executed: {executed}  (delete_logs never ran: {'delete_logs' not in executed})")
    print(
        f"round 1 allowed: {not allowed}; round 2 blocked tool: {bool(blocked_tool)}; "
        f"round 3 blocked input: {bool(blocked_input)}"
    )
    print("demo OK" if ok else "demo FAILED: unexpected outcome")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
