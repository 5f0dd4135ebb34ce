"""What ``Execlave(policies=...)`` accepts: every wrong shape is a clear error, and no shape turns
enforcement off silently."""

import pytest

from execlave import Execlave
from execlave.errors import PolicyBlockedError, PolicyConfigError
from execlave.policy import NO_POLICIES

DENY = {"id": "no-delete", "policyType": "tool_invocation", "ruleDefinition": {"deny": ["delete_*"]}}


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for name in ("EXECLAVE_API_KEY", "EXECLAVE_POLICY_FILE"):
        monkeypatch.delenv(name, raising=False)


def test_single_policy_mapping_is_a_type_error_that_says_what_to_pass(provider):
    with pytest.raises(TypeError, match=r"pass a list of policies, policies=\[\{") as info:
        Execlave(policies=DENY, tracer_provider=provider)
    assert "model_dump" not in str(info.value)


def test_document_mapping_is_accepted(provider):
    exe = Execlave(policies={"policies": [DENY]}, tracer_provider=provider)
    try:
        with pytest.raises(PolicyBlockedError):
            exe.enforce_policy("ops-assistant", "x", tools=["delete_file"])
    finally:
        exe.shutdown(timeout=1)


def test_empty_list_is_an_error_unless_meant(provider):
    with pytest.raises(PolicyConfigError, match="NO_POLICIES"):
        Execlave(policies=[], tracer_provider=provider)
    exe = Execlave(policies=NO_POLICIES, tracer_provider=provider)
    try:
        assert exe.enforce_policy("ops-assistant", "x", tools=["delete_file"])["allowed"]
        with pytest.raises(PolicyConfigError, match="no policies"):
            exe.reload_policies([])
    finally:
        exe.shutdown(timeout=1)


def test_empty_policy_file_in_env_is_an_error_not_a_silent_drop_of_the_baseline(
    provider, tmp_path, monkeypatch
):
    path = tmp_path / "policies.yaml"
    path.write_text("# to be written\n")
    monkeypatch.setenv("EXECLAVE_POLICY_FILE", str(path))
    with pytest.raises(PolicyConfigError, match="EXECLAVE_POLICY_FILE") as info:
        Execlave(tracer_provider=provider)
    assert "no policies" in str(info.value)


def test_typo_in_a_policy_key_fails_the_constructor(provider):
    with pytest.raises(PolicyConfigError, match="did you mean 'enforcementMode'"):
        Execlave(policies=[{**DENY, "enforcment_mode": "warn"}], tracer_provider=provider)
