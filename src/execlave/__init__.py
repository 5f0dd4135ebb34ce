"""execlave: OpenTelemetry-native governance for AutoGen agents.

    from execlave import EnforcementHaltError, Execlave, PolicyBlockedError, instrument_autogen_agent

``Execlave`` and the AutoGen functions are imported on first use, so ``import execlave`` (and
``import execlave.policy``, ``import execlave.cli``) load neither OpenTelemetry nor httpx nor AutoGen.
The public names are listed in ``__all__`` and in ``docs/architecture.md``.
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
    from .integrations.autogen import (
        instrument_autogen_agent,
        raise_policy_blocks,
        uninstrument_autogen_agent,
    )

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
    "instrument_autogen_agent",
    "raise_policy_blocks",
    "uninstrument_autogen_agent",
]

# Loaded on first access: name -> module (relative to this package).
_LAZY = {
    "Execlave": ".client",
    "instrument_autogen_agent": ".integrations.autogen",
    "raise_policy_blocks": ".integrations.autogen",
    "uninstrument_autogen_agent": ".integrations.autogen",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'execlave' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
