"""The policy layer: schema, loading, normalisation, detectors and the compiled engine.

Pure Python: nothing here imports OpenTelemetry, httpx or AutoGen, and nothing touches the disk
except reading a policy file (checked by the import contracts in ``pyproject.toml``).

Public: the policy sources :class:`~execlave.Execlave` takes (``load_policies``,
``baseline_policies``, ``NO_POLICIES``, ``PolicySource``, ``Policy``), and the engine with its
request and answer types for evaluating policies offline (``PolicyEngine``, ``CheckRequest``,
``ToolCall``, ``ToolOutput``, ``Decision``). Everything else lives in the submodules and is internal.
"""

from .engine import PolicyEngine
from .loader import NO_POLICIES, PolicySource, baseline_policies, load_policies
from .schema import Policy
from .types import CheckRequest, Decision, ToolCall, ToolOutput

__all__ = [
    "NO_POLICIES",
    "CheckRequest",
    "Decision",
    "Policy",
    "PolicyEngine",
    "PolicySource",
    "ToolCall",
    "ToolOutput",
    "baseline_policies",
    "load_policies",
]
