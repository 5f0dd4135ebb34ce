import pickle

import pytest

from execlave.errors import (
    AgentPausedError,
    ConfigIssue,
    EnforcementUnavailableError,
    ExeclaveError,
    PolicyBlockedError,
    PolicyConfigError,
)

VIOLATION = {
    "policyId": "no-delete",
    "policyName": "No destructive tools",
    "policyType": "tool_invocation",
    "enforcementMode": "block",
    "severity": "high",
    "message": "tool 'delete_file' is denied",
    "target": "tool_call",
    "toolName": "delete_file",
}


def test_blocked_error_names_each_policy_and_keeps_violations():
    other = {
        **VIOLATION,
        "policyId": "inj",
        "policyName": "Injection",
        "policyType": "injection_scan",
        "target": "input",
        "message": "input matches injection pattern #1",
    }
    del other["toolName"]
    exc = PolicyBlockedError([VIOLATION, other])
    assert exc.violations == [VIOLATION, other]
    text = str(exc)
    assert "No destructive tools" in text and "Injection" in text
    assert "'delete_file'" in text
    assert isinstance(exc, ExeclaveError)


def test_blocked_error_violations_are_copies():
    source = [dict(VIOLATION)]
    exc = PolicyBlockedError(source)
    source[0]["policyId"] = "changed"
    assert exc.violations[0]["policyId"] == "no-delete"


def test_errors_survive_pickling():
    # Errors cross process boundaries (multiprocessing, task queues): type and payload must survive.
    blocked = pickle.loads(pickle.dumps(PolicyBlockedError([VIOLATION])))
    assert isinstance(blocked, PolicyBlockedError) and blocked.violations == [VIOLATION]
    paused = pickle.loads(pickle.dumps(AgentPausedError("ops-assistant", "incident 42")))
    assert (paused.agent_id, paused.reason) == ("ops-assistant", "incident 42")
    assert "incident 42" in str(paused)


def test_config_error_lists_every_issue_with_file_policy_and_field():
    exc = PolicyConfigError(
        [
            ConfigIssue("ops.yaml", "no-delete", "ruleDefinition.deny[0]", "must be a string"),
            ConfigIssue("ops.yaml", "#3", "enforcementMode", "must be one of block, warn, monitor"),
        ]
    )
    text = str(exc)
    assert "ops.yaml: no-delete / ruleDefinition.deny[0]: must be a string" in text
    assert "ops.yaml: #3 / enforcementMode" in text
    assert isinstance(exc, ValueError) and isinstance(exc, ExeclaveError)


def test_enforcement_unavailable_is_an_execlave_error():
    with pytest.raises(ExeclaveError):
        raise EnforcementUnavailableError("no policy set loaded")


def test_the_published_error_tree():
    from execlave.errors import (
        ApprovalTimeoutError,
        ApprovalVerificationError,
        CertificateMismatchError,
        EnforcementHaltError,
        ExeclaveAuthError,
        PlanLimitExceededError,
        PolicyDeniedError,
        QuotaExceededError,
        ValidatorDeniedError,
    )

    halts = [
        PolicyBlockedError,
        ValidatorDeniedError,
        AgentPausedError,
        PolicyDeniedError,
        ApprovalTimeoutError,
        ApprovalVerificationError,
        CertificateMismatchError,
        EnforcementUnavailableError,
    ]
    for cls in halts:
        assert issubclass(cls, EnforcementHaltError) and issubclass(cls, ExeclaveError)
    assert issubclass(ValidatorDeniedError, PolicyBlockedError)
    assert issubclass(PlanLimitExceededError, QuotaExceededError)
    for cls in (ExeclaveAuthError, QuotaExceededError, PolicyConfigError):
        assert issubclass(cls, ExeclaveError) and not issubclass(cls, EnforcementHaltError)


def test_new_errors_survive_pickling_and_say_what_happened():
    from execlave.errors import (
        ApprovalTimeoutError,
        ApprovalVerificationError,
        ExeclaveAuthError,
        PlanLimitExceededError,
        PolicyDeniedError,
        ValidatorDeniedError,
    )

    cases = [
        PolicyDeniedError("apr_1", "not this month"),
        ApprovalTimeoutError("apr_2"),
        ApprovalVerificationError("apr_3", "HTTP 500"),
        ExeclaveAuthError("refused", 401),
        PlanLimitExceededError("maxTracesPerMonth", 10, 10),
        ValidatorDeniedError([{**VIOLATION, "policyType": "custom_validator"}]),
    ]
    for exc in cases:
        copy = pickle.loads(pickle.dumps(exc))
        assert type(copy) is type(exc) and str(copy) == str(exc)
    assert "not this month" in str(cases[0])
    assert cases[-1].validator_violations[0]["policyType"] == "custom_validator"


def test_outage_error_accepts_the_published_arguments():
    exc = EnforcementUnavailableError(3, "HTTP 503")
    assert exc.consecutive_failures == 3 and exc.last_error == "HTTP 503"
    assert "3 consecutive" in str(exc) and "HTTP 503" in str(exc)
