"""Server-side enforcement over ``POST /api/v1/policies/enforce`` against the loopback Execlave:
the body the published client sends, every answer it handles, local policies first."""

import pytest

from execlave import (
    EnforcementHaltError,
    EnforcementUnavailableError,
    ExeclaveAuthError,
    PlanLimitExceededError,
    PolicyBlockedError,
    ValidatorDeniedError,
)
from support.execlave_api import block

from .conftest import KEY, TOOL_POLICY

SERVER_VIOLATION = {
    "policyId": "pol_7",
    "policyName": "No refunds over $500",
    "policyType": "custom_rule",
    "enforcementMode": "block",
    "message": "refund above limit",
}


def test_allowed_round_sends_the_published_body_with_the_bearer_key(api, make_client):
    exe = make_client(api.base_url)
    assert exe.enforce_policy("ops-assistant", "restart web-1") == {"allowed": True, "warnings": []}
    (call,) = api.calls("enforce")
    assert call.body == {"agentId": "ops-assistant", "input": "restart web-1", "environment": "production"}
    assert call.headers["Authorization"] == f"Bearer {KEY}"


def test_optional_fields_only_when_set_and_tools_as_names(api, make_client):
    exe = make_client(api.base_url, environment="staging")
    exe.enforce_policy(
        "ops-assistant",
        "look it up",
        tools=["search_docs", {"name": "fetch_page", "arguments": {"url": "https://x"}}],
        metadata={"ticket": "T-1"},
        conversation_history=[{"role": "user", "content": "hi"}],
        tool_outputs=[{"name": "search_docs", "output": "3 results"}],
    )
    (call,) = api.calls("enforce")
    assert call.body["tools"] == ["search_docs", "fetch_page"]
    assert call.body["metadata"] == {
        "ticket": "T-1",
        "toolArguments": [{"name": "fetch_page", "arguments": {"url": "https://x"}}],
    }
    assert call.body["environment"] == "staging"
    assert call.body["conversationHistory"] == [{"role": "user", "content": "hi"}]
    assert call.body["toolOutputs"] == [{"name": "search_docs", "output": "3 results"}]


def test_server_block_raises_with_the_servers_violations(api, make_client):
    api.enforce = lambda body: block(SERVER_VIOLATION)
    exe = make_client(api.base_url)
    with pytest.raises(PolicyBlockedError) as info:
        exe.enforce_policy("ops-assistant", "refund 900")
    assert info.value.violations[0]["policyId"] == "pol_7"
    assert info.value.violations[0]["message"] == "refund above limit"
    assert isinstance(info.value, EnforcementHaltError)


def test_validator_denial_is_the_specific_error(api, make_client):
    api.enforce = lambda body: block({**SERVER_VIOLATION, "policyType": "custom_validator"})
    exe = make_client(api.base_url)
    with pytest.raises(ValidatorDeniedError):
        exe.enforce_policy("ops-assistant", "refund 900")


def test_server_warnings_are_returned(api, make_client):
    warning = {**SERVER_VIOLATION, "enforcementMode": "warn"}
    api.enforce = lambda body: (200, {"allowed": True, "warnings": [warning]})
    exe = make_client(api.base_url)
    result = exe.enforce_policy("ops-assistant", "refund 400")
    assert [w["policyId"] for w in result["warnings"]] == ["pol_7"]


def test_data_envelope_is_unwrapped(api, make_client):
    api.enforce = lambda body: (403, {"data": {"allowed": False, "violations": [SERVER_VIOLATION]}})
    exe = make_client(api.base_url)
    with pytest.raises(PolicyBlockedError):
        exe.enforce_policy("ops-assistant", "refund 900")


def test_local_block_never_reaches_the_server(api, make_client):
    exe = make_client(api.base_url, policies=[TOOL_POLICY])
    with pytest.raises(PolicyBlockedError) as info:
        exe.enforce_policy("ops-assistant", "clean up", tools=["delete_file"])
    assert info.value.violations[0]["policyId"] == "no-delete"
    assert api.calls("enforce") == []


def test_local_allow_still_asks_the_server(api, make_client):
    api.enforce = lambda body: block(SERVER_VIOLATION)
    exe = make_client(api.base_url, policies=[TOOL_POLICY])
    with pytest.raises(PolicyBlockedError):
        exe.enforce_policy("ops-assistant", "refund", tools=["refund"])
    assert len(api.calls("enforce")) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_refused_key_is_an_auth_error_with_a_fix(api, make_client, status):
    api.fault["enforce"] = status
    exe = make_client(api.base_url)
    with pytest.raises(ExeclaveAuthError) as info:
        exe.enforce_policy("ops-assistant", "hi")
    assert "EXECLAVE_API_KEY" in str(info.value)
    assert KEY not in str(info.value)


def test_wrong_key_is_refused_by_the_server(api, make_client):
    exe = make_client(api.base_url, api_key="exk_live_wrong")
    with pytest.raises(ExeclaveAuthError):
        exe.enforce_policy("ops-assistant", "hi")


def test_plan_limit_warns_and_passes_by_default(api, make_client):
    api.enforce = lambda body: (402, {"error": {"resource": "maxTracesPerMonth", "current": 10, "max": 10}})
    exe = make_client(api.base_url)
    result = exe.enforce_policy("ops-assistant", "hi")
    assert result["warnings"][0]["policyType"] == "plan_limit"
    assert exe.stats()["bypasses"] == 1
    assert exe.flush(2.0)
    assert [w["reason"] for w in api.bypass_windows] == ["plan_limit_exceeded"]


def test_plan_limit_fail_closed_raises(api, make_client):
    api.enforce = lambda body: (402, {"error": {"resource": "maxTracesPerMonth", "current": 10, "max": 10}})
    exe = make_client(api.base_url, plan_limit_behavior="fail_closed")
    with pytest.raises(PlanLimitExceededError):
        exe.enforce_policy("ops-assistant", "hi")


@pytest.mark.parametrize("status", [400, 404, 422])
def test_an_answer_that_is_no_decision_is_never_a_pass(api, make_client, status):
    """Not an outage: the server is up and decided nothing (tests/cloud/test_hostile_answers.py)."""
    api.fault["enforce"] = status
    for mode in ("fail_open", "fail_closed"):
        exe = make_client(api.base_url, enforcement_on_outage=mode)
        with pytest.raises(EnforcementUnavailableError, match=f"HTTP {status}"):
            exe.enforce_policy("ops-assistant", "hi")
        assert exe.stats()["bypasses"] == 0


def test_decision_cache_is_keyed_on_the_whole_request(api, make_client):
    exe = make_client(api.base_url)
    exe.enforce_policy("ops-assistant", "hi", tools=["a"])
    exe.enforce_policy("ops-assistant", "hi", tools=["a"])
    assert len(api.calls("enforce")) == 1
    exe.enforce_policy("ops-assistant", "hi", tools=["b"])
    exe.enforce_policy("ops-assistant", "hi", tools=["a"], metadata={"k": "v"})
    exe.enforce_policy("ops-assistant", "hi", tools=[{"name": "a", "arguments": {"x": 1}}])
    exe.enforce_policy("ops-assistant", "hi", tools=["a"], environment="staging")
    assert len(api.calls("enforce")) == 5
    assert exe.stats()["server_decision_cache_hits"] == 1


def test_blocks_are_never_cached(api, make_client):
    api.enforce = lambda body: block(SERVER_VIOLATION)
    exe = make_client(api.base_url)
    for _ in range(2):
        with pytest.raises(PolicyBlockedError):
            exe.enforce_policy("ops-assistant", "refund")
    assert len(api.calls("enforce")) == 2


def test_ttl_zero_disables_the_cache(api, make_client):
    exe = make_client(api.base_url, decision_cache_ttl=0)
    exe.enforce_policy("ops-assistant", "hi")
    exe.enforce_policy("ops-assistant", "hi")
    assert len(api.calls("enforce")) == 2


async def test_async_path_uses_the_same_contract(api, make_client):
    api.enforce = lambda body: (
        block(SERVER_VIOLATION) if "refund" in body["input"] else (200, {"allowed": True})
    )
    exe = make_client(api.base_url)
    from execlave.policy import CheckRequest

    assert (await exe.adecide(CheckRequest(agent_id="ops-assistant", input="hello"))).allowed
    decision = await exe.adecide(CheckRequest(agent_id="ops-assistant", input="refund 900"))
    assert decision.blocked and decision.violations[0]["policyId"] == "pol_7"


def test_an_empty_tool_name_still_gets_a_decision(api, make_client):
    api.enforce = lambda body: (
        block(SERVER_VIOLATION) if "unnamed_tool" in body["tools"] else (200, {"allowed": True})
    )
    exe = make_client(api.base_url)
    with pytest.raises(PolicyBlockedError):
        exe.enforce_policy("ops-assistant", "x", tools=[""])
