"""The two policies most adapter tests enforce: a tool deny list and an injection scan on input
and tool output."""

from __future__ import annotations

from typing import Any

TOOL_DENY: dict[str, Any] = {
    "id": "deny-destructive",
    "name": "No destructive tools",
    "policyType": "tool_invocation",
    "enforcementMode": "block",
    "ruleDefinition": {"deny": ["delete_*", "drop_*"]},
}
INJECTION_BLOCK: dict[str, Any] = {
    "id": "block-injection",
    "name": "Block injection",
    "policyType": "injection_scan",
    "enforcementMode": "block",
    "ruleDefinition": {
        "scan_input": True,
        "scan_output": True,
        "patterns": ["ignore previous instructions", "rm -rf /"],
    },
}
