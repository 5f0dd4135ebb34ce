"""Quickstart: govern one classic AutoGen agent (offline: a scripted reply stands in for the model).

Swap `scripted_model` for a real `llm_config` and set EXECLAVE_API_KEY to send spans to Execlave.
"""

from __future__ import annotations

import os
from typing import Any

from autogen import Agent, ConversableAgent

from execlave import Execlave, PolicyBlockedError, instrument_autogen_agent

POLICIES = [
    {
        "id": "no-destructive-input",
        "name": "No destructive commands",
        "policyType": "injection_scan",
        "enforcementMode": "block",
        "ruleDefinition": {"scan_input": True, "patterns": ["rm -rf /"]},
    }
]


def scripted_model(recipient: Any, messages: Any = None, sender: Any = None, config: Any = None) -> Any:
    return True, "Roll the web tier one node at a time: `systemctl restart web` on each, behind the LB."


def main() -> None:
    agent = ConversableAgent("ops_assistant", llm_config=False, human_input_mode="NEVER")
    agent.register_reply([Agent, None], scripted_model, position=0)

    exe = Execlave(api_key=os.environ.get("EXECLAVE_API_KEY"), policies=POLICIES, console=True)
    instrument_autogen_agent(agent, exe, agent_id="ops-assistant")  # idempotent

    reply = agent.generate_reply(messages=[{"role": "user", "content": "restart the web tier"}])
    print("reply:", reply)
    try:
        agent.generate_reply(messages=[{"role": "user", "content": "just rm -rf / the box"}])
    except PolicyBlockedError as exc:
        print("blocked:", [(v["policyId"], v["target"]) for v in exc.violations])
    exe.flush()
    exe.shutdown()


if __name__ == "__main__":
    main()
