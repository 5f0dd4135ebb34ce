"""The policy layer: schema, loading, normalisation, detectors and the compiled engine.

Pure Python: nothing here imports OpenTelemetry or AutoGen.
"""

from .engine import PolicyEngine, normalize_tool_name
from .loader import NO_POLICIES, baseline_policies, load_policies, resolve_policy_source
from .normalize import normalize_text
from .pii import PII_TYPES, detect_pii, mask_pii
from .schema import Policy
from .types import ALLOW, CheckRequest, Decision, ToolCall, ToolOutput, Violation

__all__ = [
    "ALLOW",
    "NO_POLICIES",
    "PII_TYPES",
    "CheckRequest",
    "Decision",
    "Policy",
    "PolicyEngine",
    "ToolCall",
    "ToolOutput",
    "Violation",
    "baseline_policies",
    "detect_pii",
    "load_policies",
    "mask_pii",
    "normalize_text",
    "normalize_tool_name",
    "resolve_policy_source",
]
