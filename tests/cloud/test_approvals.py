"""A 202 from the enforce endpoint: the approval is polled, then verified for this exact action;
never cached. Sync blocks only the calling thread; async awaits."""

import threading

import pytest

from execlave import (
    ApprovalTimeoutError,
    ApprovalVerificationError,
    CertificateMismatchError,
    EnforcementHaltError,
    PolicyDeniedError,
)
from execlave.policy import CheckRequest, ToolCall
from support.waiting import wait_until


@pytest.fixture
def approving(api):
    api.require_approval = lambda body: "pay" in body["input"]
    return api


def decide_when_polled(api, status, reason=None):
    def run():
        assert wait_until(lambda: bool(api.calls("approvals.get")))
        approval_id = next(iter(api.approvals))
        api.decide_approval(approval_id, status, reason)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_approved_and_verified_is_allowed(approving, make_client):
    exe = make_client(approving.base_url)
    decide_when_polled(approving, "approved")
    result = exe.enforce_policy("pay-agent", "pay invoice 7", tools=["pay_invoice"], metadata={"n": 7})
    assert result["allowed"] is True
    (verify,) = approving.calls("approvals.verify")
    # The action context is exactly what the enforce call sent (what the approver approved).
    assert verify.body == {
        "actionContext": {
            "input": "pay invoice 7",
            "environment": "production",
            "metadata": {"n": 7},
            "tools": ["pay_invoice"],
        }
    }


def test_approvals_are_never_cached(approving, make_client):
    approving.approval_outcome = "approved"
    exe = make_client(approving.base_url)
    exe.enforce_policy("pay-agent", "pay invoice 7")
    exe.enforce_policy("pay-agent", "pay invoice 7")
    assert len(approving.calls("enforce")) == 2
    assert len(approving.calls("approvals.verify")) == 2


def test_denied_raises_policy_denied(approving, make_client):
    exe = make_client(approving.base_url)
    decide_when_polled(approving, "denied", "not this month")
    with pytest.raises(PolicyDeniedError, match="not this month") as info:
        exe.enforce_policy("pay-agent", "pay invoice 7")
    assert isinstance(info.value, EnforcementHaltError)


@pytest.mark.parametrize("outcome", ["expired", "pending"])
def test_expired_or_no_decision_in_time_times_out(approving, make_client, outcome):
    approving.approval_outcome = outcome
    exe = make_client(approving.base_url, approval_timeout=0.2)
    with pytest.raises(ApprovalTimeoutError):
        exe.enforce_policy("pay-agent", "pay invoice 7")


def test_verify_answering_invalid_is_a_mismatch(approving, make_client):
    approving.approval_outcome = "approved"
    original = approving._approvals_verify

    def invalid(body, params, record):
        approving.approvals[params["id"]].verify_valid = False
        return original(body, params, record)

    approving._approvals_verify = invalid
    exe = make_client(approving.base_url)
    with pytest.raises(CertificateMismatchError):
        exe.enforce_policy("pay-agent", "pay invoice 7")


@pytest.mark.parametrize("fault", [500, "malformed", "hang"])
def test_failed_verify_is_a_verification_error(approving, make_client, fault):
    approving.approval_outcome = "approved"
    approving.fault["approvals.verify"] = fault
    exe = make_client(approving.base_url, request_timeout=0.2)
    with pytest.raises(ApprovalVerificationError):
        exe.enforce_policy("pay-agent", "pay invoice 7")


async def test_async_approval_awaits(approving, make_client):
    exe = make_client(approving.base_url)
    decide_when_polled(approving, "approved")
    request = CheckRequest(agent_id="pay-agent", input="pay invoice 7", tool_calls=(ToolCall("pay_invoice"),))
    assert (await exe.adecide(request)).allowed
    assert len(approving.calls("approvals.verify")) == 1


async def test_ag2_denied_approval_at_tool_execution_ends_the_turn(api, make_client):
    """AG2 1.x turns an exception from tool execution into a tool error the model reads; a denied
    approval there (not only a policy block) must end the turn with PolicyDeniedError."""
    from support.requires import require

    require("ag2")
    from ag2 import Agent, tool
    from ag2.events import ToolCallEvent
    from ag2.testing import TestConfig

    tool_checks = []

    def second_tool_check_needs_approval(body):
        if "pay_invoice" in body.get("tools", []):
            tool_checks.append(body)
            return len(tool_checks) == 2  # the check right before execution
        return False

    api.require_approval = second_tool_check_needs_approval
    api.approval_outcome = "denied"
    ran = []

    def pay_invoice(n: int) -> str:
        ran.append(n)
        return "paid"

    from execlave.integrations.autogen import instrument_autogen_agent

    exe = make_client(api.base_url, decision_cache_ttl=0)  # else the execution check reuses the first allow
    model = TestConfig(ToolCallEvent("pay_invoice", arguments='{"n": 7}'), "the model read the tool error")
    agent = Agent("payer", config=model, tools=[tool(pay_invoice)])
    instrument_autogen_agent(agent, exe, agent_id="pay-agent")
    with pytest.raises(PolicyDeniedError):
        await agent.ask("settle the open invoice")
    assert ran == []
    assert len(tool_checks) == 2
