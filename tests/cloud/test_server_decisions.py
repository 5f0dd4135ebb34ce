"""Server-evaluated policies: enforce endpoint, decision cache keyed on every field, failures,
circuit breaker, async path."""

import asyncio

import pytest

from execlave.cloud import CloudConnector
from execlave.errors import EnforcementUnavailableError, PolicyBlockedError
from execlave.policy import CheckRequest, PolicyEngine, ToolCall
from support.execlave_api import ExeclaveAPI

from .conftest import KEY, TOOL_POLICY

APPROVAL = {
    "id": "needs-approval",
    "name": "Payments need approval",
    "policyType": "human_approval",
    "enforcementMode": "block",
    "appliesToAgents": ["pay-agent"],
    "ruleDefinition": {"tools": ["pay_*"]},
}
ENFORCE = "/api/v1/policies/enforce"


def deny_pay(body):
    if any(t["name"].startswith("pay_") for t in body["tools"]):
        return 403, {
            "allowed": False,
            "violations": [
                {
                    "policyId": "needs-approval",
                    "policyName": "Payments need approval",
                    "policyType": "human_approval",
                    "enforcementMode": "block",
                    "message": "approval pending",
                    "target": "tool_call",
                    "toolName": body["tools"][0]["name"],
                }
            ],
        }
    return 200, {"allowed": True, "warnings": []}


@pytest.fixture
def server():
    with ExeclaveAPI(api_key=KEY, policies=[TOOL_POLICY, APPROVAL]) as api:
        api.enforce = deny_pay
        yield api


def test_unknown_type_does_not_fail_the_set_and_is_decided_by_the_server(server, make_client):
    exe = make_client(server.base_url)
    assert exe.stats()["server_evaluated_policies"] == 1
    with pytest.raises(PolicyBlockedError) as info:
        exe.enforce_policy(
            "pay-agent", "pay the invoice", tools=[{"name": "pay_invoice", "arguments": {"n": 1}}]
        )
    assert info.value.violations[0]["policyId"] == "needs-approval"
    assert info.value.violations[0]["message"] == "approval pending"
    body = server.calls(ENFORCE)[0].body
    assert body == {
        "agentId": "pay-agent",
        "input": "pay the invoice",
        "environment": "production",
        "metadata": {},
        "tools": [{"name": "pay_invoice", "arguments": {"n": 1}}],
    }
    assert server.calls(ENFORCE)[0].headers["Authorization"] == f"Bearer {KEY}"


def test_server_is_not_asked_for_agents_its_policies_do_not_cover(server, make_client):
    exe = make_client(server.base_url)
    assert exe.enforce_policy("other-agent", "hi", tools=["pay_invoice"])["allowed"]
    assert server.calls(ENFORCE) == []


def test_local_block_still_applies_with_server_policies(server, make_client):
    exe = make_client(server.base_url)
    with pytest.raises(PolicyBlockedError) as info:
        exe.enforce_policy("pay-agent", "x", tools=["delete_ledger"])
    assert [v["policyId"] for v in info.value.violations] == ["no-delete"]


def test_server_warnings_are_returned(server, make_client):
    server.enforce = lambda body: (
        200,
        {"allowed": True, "warnings": [{"policyId": "needs-approval", "message": "heads up"}]},
    )
    exe = make_client(server.base_url)
    result = exe.enforce_policy("pay-agent", "hello")
    assert [w["message"] for w in result["warnings"]] == ["heads up"]


def test_decision_cache_is_keyed_on_every_field(server, make_client):
    exe = make_client(server.base_url)
    allow_a = {"name": "lookup", "arguments": {"id": 1}}
    assert exe.enforce_policy("pay-agent", "q", tools=[allow_a])["allowed"]
    assert exe.enforce_policy("pay-agent", "q", tools=[allow_a])["allowed"]
    assert len(server.calls(ENFORCE)) == 1  # identical request: cached
    assert exe.stats()["server_decision_cache_hits"] == 1
    # a cached allow for one tool never allows another
    with pytest.raises(PolicyBlockedError):
        exe.enforce_policy("pay-agent", "q", tools=[{"name": "pay_invoice", "arguments": {"id": 1}}])
    variants = [
        dict(input="q", tools=[{"name": "lookup", "arguments": {"id": 2}}]),  # arguments
        dict(input="q2", tools=[allow_a]),  # input
        dict(input="q", tools=[allow_a], environment="staging"),  # environment
        dict(input="q", tools=[allow_a], metadata={"user": "u1"}),  # metadata
    ]
    for i, kw in enumerate(variants):
        exe.enforce_policy("pay-agent", **kw)
        assert len(server.calls(ENFORCE)) == 3 + i
    assert server.calls(ENFORCE)[-2].body["environment"] == "staging"


@pytest.mark.parametrize("fault", [500, 429, 401, "malformed", "hang"])
def test_enforce_failure_fails_closed_for_blocking_server_policies(server, make_client, fault):
    server.fault[ENFORCE] = fault
    exe = make_client(server.base_url, request_timeout=0.3)
    with pytest.raises(EnforcementUnavailableError) as info:
        exe.enforce_policy("pay-agent", "hello", tools=["lookup"])
    assert "needs-approval" in str(info.value) and KEY not in str(info.value)


def test_enforce_failure_fail_open_passes_and_counts(server, make_client):
    server.fault[ENFORCE] = 502
    exe = make_client(server.base_url, enforcement_on_outage="fail_open")
    assert exe.enforce_policy("pay-agent", "hello", tools=["pay_invoice"])["allowed"]
    assert exe.stats()["bypasses"] == 1 and exe.stats()["server_decision_errors"] == 1


def test_enforce_failure_for_monitor_only_policies_passes_with_bypass(server, make_client):
    server.policies = [dict(APPROVAL, enforcementMode="monitor")]
    server.fault[ENFORCE] = 500
    exe = make_client(server.base_url)  # fail_closed, but nothing blocking depends on the server
    assert exe.enforce_policy("pay-agent", "hello")["allowed"]
    assert exe.stats()["bypasses"] == 1


def connector(server, tmp_path, **kw):
    engine = PolicyEngine()
    conn = CloudConnector(
        engine,
        api_key=KEY,
        base_url=server.base_url,
        cache_dir=tmp_path,
        policy_refresh_interval=60,
        **{"request_timeout": 0.3, **kw},
    )
    conn.start()
    return conn


def test_circuit_breaker_stops_calling_a_failing_server_then_retries(server, tmp_path):
    now = [0.0]
    server.fault[ENFORCE] = 500
    conn = connector(
        server,
        tmp_path,
        enforcement_on_outage="fail_open",
        breaker_threshold=2,
        breaker_reset=10.0,
        clock=lambda: now[0],
        decision_cache_ttl=0,
    )
    try:
        for i in range(5):
            conn.check(CheckRequest("pay-agent", input=f"x{i}"))
        assert len(server.calls(ENFORCE)) == 2  # opened after two failures
        assert conn.stats()["circuit_open"] == 1 and conn.stats()["bypasses"] == 5
        del server.fault[ENFORCE]
        now[0] = 11.0  # half-open: one trial goes through and closes the circuit
        assert conn.check(CheckRequest("pay-agent", input="y")).allowed
        assert len(server.calls(ENFORCE)) == 3 and conn.stats()["circuit_open"] == 0
    finally:
        conn.close()


def test_open_circuit_fails_closed(server, tmp_path):
    server.fault[ENFORCE] = 500
    conn = connector(server, tmp_path, breaker_threshold=1, breaker_reset=60)
    try:
        for _ in range(3):
            with pytest.raises(EnforcementUnavailableError):
                conn.check(CheckRequest("pay-agent", input="x"))
        assert len(server.calls(ENFORCE)) == 1
    finally:
        conn.close()


def test_decision_cache_expires(server, tmp_path):
    now = [0.0]
    conn = connector(server, tmp_path, clock=lambda: now[0], decision_cache_ttl=5)
    try:
        request = CheckRequest("pay-agent", input="x", tool_calls=(ToolCall("lookup"),))
        conn.check(request)
        conn.check(request)
        assert len(server.calls(ENFORCE)) == 1
        now[0] = 6.0
        conn.check(request)
        assert len(server.calls(ENFORCE)) == 2
    finally:
        conn.close()


async def test_async_check_uses_asyncclient_and_never_blocks_the_loop(server, tmp_path):
    server.fault[ENFORCE] = ("slow", 0.3)
    conn = connector(server, tmp_path, request_timeout=5.0)
    ticks = 0
    stop = asyncio.Event()

    async def ticker():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    try:
        decision = await conn.acheck(
            CheckRequest("pay-agent", input="x", tool_calls=(ToolCall("pay_invoice"),))
        )
    finally:
        stop.set()
        await task
        conn.close()
    assert decision.blocked and decision.blocking_violations[0]["policyId"] == "needs-approval"
    assert ticks >= 5  # the loop kept running while the request was in flight


async def test_async_enforce_failure_fails_closed(server, tmp_path):
    server.fault[ENFORCE] = "hang"
    conn = connector(server, tmp_path)
    try:
        with pytest.raises(EnforcementUnavailableError):
            await conn.acheck(CheckRequest("pay-agent", input="x"))
    finally:
        conn.close()


async def test_client_acheck_routes_through_the_connector(server, make_client):
    exe = make_client(server.base_url)
    decision = await exe._acheck(CheckRequest("pay-agent", input="x", tool_calls=(ToolCall("pay_x"),)))
    assert decision.blocked


def test_enforcement_keeps_working_after_shutdown(server, make_client):
    exe = make_client(server.base_url)
    exe.shutdown(timeout=0.5)
    with pytest.raises(PolicyBlockedError):
        exe.enforce_policy("pay-agent", "x", tools=["pay_invoice"])
    assert exe.enforce_policy("pay-agent", "x", tools=["lookup"])["allowed"]


def test_sparse_server_violations_get_every_expected_key(server, make_client):
    server.enforce = lambda body: (403, {"allowed": False, "violations": [{"message": "no"}]})
    exe = make_client(server.base_url)
    with pytest.raises(PolicyBlockedError) as info:
        exe.enforce_policy("pay-agent", "x")
    (v,) = info.value.violations
    expected = {"policyId", "policyName", "policyType", "enforcementMode", "severity", "message", "target"}
    assert expected <= v.keys() and v["enforcementMode"] == "block" and v["message"] == "no"


def test_403_without_violations_still_blocks(server, make_client):
    server.enforce = lambda body: (403, {"allowed": False})
    exe = make_client(server.base_url)
    with pytest.raises(PolicyBlockedError, match="blocked by Execlave"):
        exe.enforce_policy("pay-agent", "x")
