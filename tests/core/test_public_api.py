"""The public surface: what users import, listed once here and in docs/architecture.md."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import execlave
import execlave.errors

ROOT = Path(__file__).resolve().parents[2]

# The documented public names, by module (a name re-exported by `execlave` counts once).
PUBLIC = {
    "execlave": {
        "Execlave",
        "instrument_autogen_agent",
        "uninstrument_autogen_agent",
        "raise_policy_blocks",
        "__version__",
        "ExeclaveError",
        "ExeclaveAuthError",
        "EnforcementHaltError",
        "PolicyBlockedError",
        "ValidatorDeniedError",
        "AgentPausedError",
        "PolicyDeniedError",
        "ApprovalTimeoutError",
        "ApprovalVerificationError",
        "CertificateMismatchError",
        "EnforcementUnavailableError",
        "QuotaExceededError",
        "PlanLimitExceededError",
        "PolicyConfigError",
    },
    "execlave.errors": {
        "ConfigIssue",
        "ExeclaveError",
        "ExeclaveAuthError",
        "EnforcementHaltError",
        "PolicyBlockedError",
        "ValidatorDeniedError",
        "AgentPausedError",
        "PolicyDeniedError",
        "ApprovalTimeoutError",
        "ApprovalVerificationError",
        "CertificateMismatchError",
        "EnforcementUnavailableError",
        "QuotaExceededError",
        "PlanLimitExceededError",
        "PolicyConfigError",
    },
    "execlave.policy": {
        "NO_POLICIES",
        "PolicySource",
        "Policy",
        "load_policies",
        "baseline_policies",
        "PolicyEngine",
        "CheckRequest",
        "ToolCall",
        "ToolOutput",
        "Decision",
    },
    "execlave.adapter": {"AgentIdentity", "Check", "CheckRequest", "Decision", "ToolCall", "ToolOutput"},
    "execlave.integrations.ag2": {"ExeclaveMiddleware"},
    "execlave.integrations.autogen.agentchat": {"govern_model_client"},
    "execlave.integrations.autogen": {
        "conversation",
        "instrument_autogen_agent",
        "uninstrument_autogen_agent",
        "raise_policy_blocks",
    },
}

# Public modules whose import needs an optional extra (opentelemetry-instrumentation).
NEEDS_EXTRA = {"execlave.integrations.autogen.instrumentor": {"AutoGenInstrumentor"}}


def test_the_quickstart_import_line_works():
    from execlave import EnforcementHaltError, Execlave, PolicyBlockedError, instrument_autogen_agent
    from execlave.client import Execlave as client_execlave
    from execlave.integrations.autogen import instrument_autogen_agent as adapter_entry

    assert Execlave is client_execlave and instrument_autogen_agent is adapter_entry
    assert issubclass(PolicyBlockedError, EnforcementHaltError)


def test_execlave_reexports_the_adapter_functions():
    import execlave.integrations.autogen as autogen

    for name in ("instrument_autogen_agent", "uninstrument_autogen_agent", "raise_policy_blocks"):
        assert getattr(execlave, name) is getattr(autogen, name)
    assert set(execlave.__all__) <= set(dir(execlave))


def test_public_modules_export_exactly_the_documented_names():
    for module, names in PUBLIC.items():
        assert set(importlib.import_module(module).__all__) == names, module
        for name in names:
            assert getattr(importlib.import_module(module), name) is not None


def test_the_public_names_are_documented():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    for names in PUBLIC.values():
        for name in names:
            assert f"`{name}`" in doc, name
    count = len(set().union(*PUBLIC.values(), *NEEDS_EXTRA.values()))
    assert f"{count} public names" in doc


def test_internal_modules_declare_no_public_names():
    """Only the public modules have ``__all__``; the others are internal (their names may change)."""
    package = ROOT / "src" / "execlave"
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        private = any(part.startswith("_") and part != "__init__" for part in parts)
        if module in PUBLIC or module in NEEDS_EXTRA or private:
            continue
        assert "\n__all__ = " not in path.read_text(encoding="utf-8"), (
            f"{module} is internal: drop its __all__"
        )


def test_the_exception_tree_in_the_docstring_is_the_class_tree():
    doc = execlave.errors.__doc__ or ""
    tree = doc.split("::", 1)[1]
    drawn: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in tree.splitlines():
        match = re.match(r"^\s*([│ ]*)(?:[├└]── )?(\w+Error)\b", line)
        if not match:
            continue
        depth = len(line[: match.start(2)])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        drawn[match.group(2)] = stack[-1][1] if stack else None
        stack.append((depth, match.group(2)))
    classes = {
        name: obj
        for name, obj in vars(execlave.errors).items()
        if isinstance(obj, type) and issubclass(obj, execlave.errors.ExeclaveError)
    }
    assert set(drawn) == set(classes)
    for name, parent in drawn.items():
        base = classes[name].__mro__[1].__name__
        assert (parent or "Exception") == base, name
