"""An unmodified two-agent classic AutoGen app (it never imports execlave): the zero-code test runs
it under ``opentelemetry-instrument``. Offline: the assistant is a scripted stand-in for a model."""

from __future__ import annotations

import json
from typing import Any

from autogen import Agent, ConversableAgent

ran: list[str] = []


def get_status(host: str) -> str:
    ran.append("get_status")
    return "ok"


def delete_logs(host: str) -> str:
    ran.append("delete_logs")
    return "deleted"


def model(recipient: Any, messages: Any = None, sender: Any = None, config: Any = None) -> Any:
    last = (messages or [{}])[-1]
    if last.get("role") == "tool" or last.get("tool_responses"):
        return True, "done. TERMINATE"
    name = "delete_logs" if "free" in str(last.get("content") or "") else "get_status"
    call = {"name": name, "arguments": json.dumps({"host": "web-1"})}
    return True, {"content": None, "tool_calls": [{"id": "c1", "type": "function", "function": call}]}


assistant = ConversableAgent("ops_assistant", llm_config=False, human_input_mode="NEVER")
assistant.register_reply([Agent, None], model, position=0)
executor = ConversableAgent(
    "OpsExecutor",
    llm_config=False,
    human_input_mode="NEVER",
    code_execution_config=False,
    function_map={"get_status": get_status, "delete_logs": delete_logs},
    default_auto_reply="TERMINATE",
)
for message in ("status of web-1", "free space on web-1"):
    try:
        executor.initiate_chat(assistant, message=message, max_turns=2, silent=True)
        print("chat ok")
    except Exception as exc:  # an app that knows nothing about execlave
        print("chat stopped:", type(exc).__name__)
print("ran:", ran)
