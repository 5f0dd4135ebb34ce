"""Classic AutoGen agents for tests: no model, replies scripted."""

from __future__ import annotations

from typing import Any


def scripted_classic(autogen: Any, name: str, *replies: Any) -> Any:
    """A classic agent without a model whose replies are ``replies`` (in order, then TERMINATE)."""
    agent = autogen.ConversableAgent(
        name, llm_config=False, human_input_mode="NEVER", code_execution_config=False
    )
    queue = list(replies)

    def reply(*args: Any, **kwargs: Any) -> tuple[bool, Any]:
        return True, (queue.pop(0) if queue else "TERMINATE")

    agent.register_reply([autogen.Agent, None], reply, 0)
    return agent
