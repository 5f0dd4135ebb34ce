"""execlave: OpenTelemetry-native governance for AutoGen agents.

from execlave import Execlave, EnforcementHaltError, PolicyBlockedError
from execlave.integrations.autogen import instrument_autogen_agent
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    AgentPausedError,
    ApprovalTimeoutError,
    ApprovalVerificationError,
    CertificateMismatchError,
    EnforcementHaltError,
    EnforcementUnavailableError,
    ExeclaveAuthError,
    ExeclaveError,
    PlanLimitExceededError,
    PolicyBlockedError,
    PolicyConfigError,
    PolicyDeniedError,
    QuotaExceededError,
    ValidatorDeniedError,
)

if TYPE_CHECKING:
    from .client import Execlave

__all__ = [
    "AgentPausedError",
    "ApprovalTimeoutError",
    "ApprovalVerificationError",
    "CertificateMismatchError",
    "EnforcementHaltError",
    "EnforcementUnavailableError",
    "Execlave",
    "ExeclaveAuthError",
    "ExeclaveError",
    "PlanLimitExceededError",
    "PolicyBlockedError",
    "PolicyConfigError",
    "PolicyDeniedError",
    "QuotaExceededError",
    "ValidatorDeniedError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # Imported lazily so `import execlave.policy` stays free of OpenTelemetry.
    if name == "Execlave":
        from .client import Execlave

        return Execlave
    raise AttributeError(f"module 'execlave' has no attribute {name!r}")
