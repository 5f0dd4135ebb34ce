"""The published client (``execlave-sdk==1.9.1``) passes every scenario against the loopback fake:
that is what makes the fake a faithful stand-in for Execlave in our own contract tests.

Run by ``nox -s vendor`` only (``EXECLAVE_VENDOR=1``, no conftest: our package is not installed).
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Iterator

import pytest

import execlave  # the vendor's package in this environment
from execlave import (
    CertificateMismatchError,
    ExeclaveAuthError,
    PolicyBlockedError,
    PolicyDeniedError,
)
from support.execlave_api import ExeclaveAPI, block, kill_switch_violation
from support.secrets import CLOUD_KEY as KEY


def test_this_is_the_published_client() -> None:
    assert importlib.metadata.version("execlave-sdk") == "1.9.1"
    assert not hasattr(execlave, "connection")  # not ours


@pytest.fixture
def api() -> Iterator[ExeclaveAPI]:
    with ExeclaveAPI(api_key=KEY) as server:
        yield server
        assert server.unknown == [], server.unknown
        assert server.invalid == [], server.invalid


@pytest.fixture
def make() -> Iterator:
    made = []

    def build(base_url: str, **kw):
        kw.setdefault("enable_control_channel", False)
        client = execlave.Execlave(api_key=kw.pop("api_key", KEY), base_url=base_url, **kw)
        made.append(client)
        return client

    yield build
    for client in made:
        client.shutdown()


def test_enforce_allowed_with_every_optional_field(api, make) -> None:
    exe = make(api.base_url)
    result = exe.enforce_policy(
        "ops-assistant",
        "look it up",
        metadata={"ticket": "T-1"},
        tools=["search_docs"],
        conversation_history=[{"role": "user", "content": "hi"}],
        tool_outputs=[{"name": "search_docs", "input": {"q": "x"}, "output": "3 results"}],
    )
    assert result["allowed"] is True
    (call,) = api.calls("enforce")
    assert call.body["tools"] == ["search_docs"]
    assert call.headers["Authorization"] == f"Bearer {KEY}"


def test_enforce_block(api, make) -> None:
    violation = {"policyId": "p", "policyType": "custom_rule", "enforcementMode": "block", "message": "no"}
    api.enforce = lambda body: block(violation)
    exe = make(api.base_url)
    with pytest.raises(PolicyBlockedError) as info:
        exe.enforce_policy("ops-assistant", "refund 900")
    assert info.value.violations == [violation]


def test_kill_switch_403(api, make) -> None:
    api.add_agent("ops-assistant", status="paused")
    exe = make(api.base_url)
    with pytest.raises(PolicyBlockedError) as info:
        exe.enforce_policy("ops-assistant", "hi")
    assert info.value.violations == [kill_switch_violation()]


def test_refused_key(api, make) -> None:
    exe = make(api.base_url, api_key="exk_live_wrong")
    with pytest.raises(ExeclaveAuthError):
        exe.enforce_policy("ops-assistant", "hi")


def test_plan_limit_402_fails_open_with_a_warning(api, make) -> None:
    api.enforce = lambda body: (402, {"error": {"resource": "maxTracesPerMonth", "current": 1, "max": 1}})
    exe = make(api.base_url)
    result = exe.enforce_policy("ops-assistant", "hi")
    assert result["allowed"] and result["warnings"][0]["policyType"] == "plan_limit"


def test_approval_approved_and_verified(api, make) -> None:
    api.require_approval = lambda body: True
    api.approval_outcome = "approved"
    exe = make(api.base_url)
    result = exe.enforce_policy("ops-assistant", "pay invoice 7", tools=["pay_invoice"], metadata={"n": 7})
    assert result["allowed"] is True and result["approvalRequestId"] in api.approvals
    (verify,) = api.calls("approvals.verify")
    assert verify.body == {
        "actionContext": {
            "input": "pay invoice 7",
            "environment": "production",
            "metadata": {"n": 7},
            "tools": ["pay_invoice"],
        }
    }


def test_approval_denied(api, make) -> None:
    api.require_approval = lambda body: True
    api.approval_outcome = "denied"
    exe = make(api.base_url)
    with pytest.raises(PolicyDeniedError):
        exe.enforce_policy("ops-assistant", "pay")


def test_approval_not_covering_the_action(api, make) -> None:
    api.require_approval = lambda body: True
    api.approval_outcome = "approved"
    original = api._approvals_verify

    def tampered(body, params, record):
        api.approvals[params["id"]].verify_valid = False
        return original(body, params, record)

    api._approvals_verify = tampered
    exe = make(api.base_url)
    with pytest.raises(CertificateMismatchError):
        exe.enforce_policy("ops-assistant", "pay")


def test_register_then_conflict_then_lookup_and_status(api, make) -> None:
    exe = make(api.base_url)
    agent = exe.register_agent("ops-assistant", "Ops", description="restarts things")
    assert agent.id in api.agents
    again = make(api.base_url).register_agent("ops-assistant", "Ops")
    assert again.id == agent.id
    assert [r.route for r in api.requests] == ["agents.create", "agents.create", "agents.search"]
    assert exe.check_agent_status("ops-assistant") == "active"
    api.set_status("ops-assistant", "paused")
    assert exe.check_agent_status("ops-assistant") == "paused"


def test_heartbeat(api, make) -> None:
    exe = make(api.base_url, enable_control_channel=True, heartbeat_interval_seconds=1)
    agent = exe.register_agent("ops-assistant", "Ops")
    deadline = time.monotonic() + 10
    while not api.heartbeats and time.monotonic() < deadline:
        time.sleep(0.05)
    assert api.heartbeats and api.heartbeats[0][0] == agent.id


def test_outage_fails_open_and_the_bypass_window_is_accepted(api, make) -> None:
    api.fault["enforce"] = 503
    exe = make(api.base_url)
    assert exe.enforce_policy("ops-assistant", "hi")["allowed"] is True
    exe.shutdown()  # drains the open window to /api/v1/sdk/bypass-windows
    (window,) = api.bypass_windows
    assert window["reason"] == "server_error" and window["status"] == 503


def test_traces_are_ingested_and_refusals_reported(api, make) -> None:
    api.reject_trace = lambda trace: (
        ("OUTCOME_EVIDENCE_REQUIRED", "needs evidence") if trace.get("userId") == "bad" else None
    )
    exe = make(api.base_url)
    with exe.trace(agent_id="ops-assistant", session_id="s1", user_id="u1") as t:
        t.set_input("hi")
        t.set_output("hello")
    with exe.trace(agent_id="ops-assistant", user_id="bad") as t:
        t.set_input("x")
    result = exe.flush()
    assert result["sent"] == 1
    assert [r["code"] for r in result["rejected"]] == ["OUTCOME_EVIDENCE_REQUIRED"]
    (stored,) = api.traces
    assert stored["sessionId"] == "s1" and stored["status"] == "success"


def test_failed_trace_with_error_fields(api, make) -> None:
    exe = make(api.base_url)
    with pytest.raises(RuntimeError), exe.trace(agent_id="ops-assistant") as t:
        t.set_input("x")
        raise RuntimeError("boom")
    exe.flush()
    (stored,) = api.traces
    assert stored["status"] == "error" and stored["errorType"] == "RuntimeError"


def test_bypass_windows_are_checked_as_the_platform_counts_and_stores(api, make) -> None:
    """The published reporter cuts fields to UTF-16 code units and replaces what a database cannot
    store: the fake's UTF-16 length rule and its refusal of NUL accept exactly that."""
    api.fault["enforce"] = 503
    exe = make(api.base_url)
    wide_agent = "ops-\x00-" + "\U0001f600" * 200  # 406 UTF-16 units, one NUL
    assert exe.enforce_policy(wide_agent, "hi")["allowed"] is True
    exe.shutdown()
    (window,) = api.bypass_windows
    assert "\x00" not in window["agentId"]
    assert sum(2 if ord(c) > 0xFFFF else 1 for c in window["agentId"]) <= 256 < len(window["agentId"]) * 2


def test_a_body_the_platform_cannot_store_is_a_server_error(api, make) -> None:
    """NUL in an enforce request: the fake answers 500 (the database write fails), which the
    published client treats as an outage (fail_open, a server_error window)."""
    exe = make(api.base_url)
    assert exe.enforce_policy("ops-assistant", "refund\x00 900")["allowed"] is True
    exe.shutdown()
    assert [w["reason"] for w in api.bypass_windows] == ["server_error"]
    api.invalid.clear()  # the refusal was the point
