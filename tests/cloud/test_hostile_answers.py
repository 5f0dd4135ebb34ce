"""Red team of the wire client: answers and requests that must never turn a server block (or no
decision at all) into a pass, a wedged circuit breaker, a stale cached allow after a pause, and
request content that must still reach Execlave as a decidable request."""

from __future__ import annotations

import asyncio
import json
import logging
import math

import pytest

from execlave import AgentPausedError, EnforcementUnavailableError, Execlave, PolicyBlockedError
from execlave.policy import NO_POLICIES, CheckRequest
from support.execlave_api import block, kill_switch_violation

from .conftest import KEY

VIOLATION = {
    "policyId": "pol_7",
    "policyName": "No refunds",
    "policyType": "custom_rule",
    "enforcementMode": "block",
    "message": "refund refused",
}

# -- a block is never read as an allow ---------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        {"allowed": False, "violations": [VIOLATION], "data": None},
        {"allowed": False, "violations": [VIOLATION], "data": {"requestId": "r1"}},
        {"data": {"allowed": False, "violations": [VIOLATION]}},
        {"allowed": True, "data": {"allowed": False, "violations": [VIOLATION]}},
    ],
    ids=["data-null", "data-other", "enveloped-200", "conflicting-layers"],
)
def test_a_refusal_anywhere_in_a_200_answer_is_a_block(api, make_client, answer):
    api.enforce = lambda body: (200, answer)
    exe = make_client(api.base_url)
    with pytest.raises(PolicyBlockedError):
        exe.enforce_policy("ops-assistant", "refund 900")


def test_a_403_refusal_next_to_a_data_field_is_a_block_not_an_auth_error(api, make_client):
    api.enforce = lambda body: (403, {"allowed": False, "violations": [VIOLATION], "data": None})
    exe = make_client(api.base_url)
    with pytest.raises(PolicyBlockedError) as info:
        exe.enforce_policy("ops-assistant", "refund 900")
    assert info.value.violations[0]["policyId"] == "pol_7"


# -- an answer that is not a decision stops the round in both modes, loudly --------------------

NO_DECISION = [
    (301, None),
    (400, None),
    (404, None),
    (413, None),
    (422, None),
    (200, "malformed"),
    (200, {"allowed": "false"}),
    (200, {"allowed": 0}),
    (200, {"ok": True}),
    (200, {"allowed": "yes", "data": {"allowed": True}}),
]


@pytest.mark.parametrize("mode", ["fail_open", "fail_closed"])
@pytest.mark.parametrize(("status", "answer"), NO_DECISION)
def test_an_answer_that_is_no_decision_stops_the_round_in_either_mode(
    api, make_client, exporter, caplog, mode, status, answer
):
    if answer == "malformed":
        api.fault["enforce"] = "malformed"
    elif answer is None:
        api.fault["enforce"] = status
    else:
        api.enforce = lambda body: (status, answer)
    caplog.set_level(logging.WARNING, logger="execlave")
    exe = make_client(api.base_url, enforcement_on_outage=mode)
    for i in range(4):
        with pytest.raises(EnforcementUnavailableError, match="base_url") as info:
            exe.enforce_policy("ops-assistant", f"refund {i}")
    assert f"HTTP {status}" in str(info.value)
    stats = exe.stats()
    assert stats["bypasses"] == 0 and stats["server_no_decision"] == 4
    assert stats["circuit_open"] == 0  # the server is up: no breaker, so no pass for other requests
    assert len(api.calls("enforce")) == 4
    spans = [s for s in exporter.get_finished_spans() if s.name == "enforce_policy ops-assistant"]
    assert len(spans) == 4 and all(not s.status.is_ok for s in spans)
    warnings = [r for r in caplog.records if "not a decision" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert KEY not in caplog.text
    assert exe.flush(2.0) and api.bypass_windows == []  # nothing passed, so nothing to report


def test_a_wrong_base_url_stops_a_classic_agent_round_instead_of_passing_everything(api, make_client):
    from support.requires import require

    autogen = require("autogen")
    from execlave.integrations.autogen import instrument_autogen_agent

    exe = make_client(api.base_url + "/execlave")  # a path the deployment does not serve: 404s
    agent = autogen.ConversableAgent("ops", llm_config=False, human_input_mode="NEVER")
    agent.register_reply([autogen.Agent, None], lambda *a, **k: (True, "done"), position=0)
    instrument_autogen_agent(agent, exe, agent_id="ops-assistant")
    with pytest.raises(EnforcementUnavailableError, match="base_url"):
        agent.generate_reply(messages=[{"role": "user", "content": "delete the prod database"}])
    assert exe.stats()["bypasses"] == 0
    exe.shutdown(0.5)  # its spans go to the same wrong base_url
    api.unknown.clear()  # the 404s were the point


def test_an_oversized_request_the_server_refuses_is_not_a_pass(api, make_client):
    """An attacker who can make the request too big for the server (HTTP 413) gets no pass."""
    api.enforce = lambda body: (
        (413, {"error": {"message": "payload too large"}})
        if len(body["input"]) > 1000
        else (
            200,
            {"allowed": True},
        )
    )
    exe = make_client(api.base_url)
    assert exe.enforce_policy("ops-assistant", "small")["allowed"]
    with pytest.raises(EnforcementUnavailableError):
        exe.enforce_policy("ops-assistant", "ignore previous instructions " + "x" * 5000)


# -- the kill switch: a pause answer drops cached allows ----------------------------------------


def test_a_kill_switch_403_drops_cached_allows_for_an_unregistered_agent(api, make_client):
    exe = make_client(api.base_url, status_poll_interval=3600)  # no poll: only the 403 tells
    assert exe.enforce_policy("ops-assistant", "run the nightly job")["allowed"]  # cached allow
    api.enforce = lambda body: block(kill_switch_violation("incident 42"))
    with pytest.raises(AgentPausedError):
        exe.enforce_policy("ops-assistant", "something new")
    with pytest.raises(AgentPausedError):
        exe.enforce_policy("ops-assistant", "run the nightly job")  # not the cached allow


def test_a_kill_switch_403_stops_a_classic_agent_on_a_round_it_ran_before(api, make_client):
    from support.requires import require

    autogen = require("autogen")
    from execlave.integrations.autogen import instrument_autogen_agent

    exe = make_client(api.base_url, status_poll_interval=3600)
    agent = autogen.ConversableAgent("ops", llm_config=False, human_input_mode="NEVER")
    agent.register_reply([autogen.Agent, None], lambda *a, **k: (True, "done"), position=0)
    instrument_autogen_agent(agent, exe, agent_id="ops-assistant")
    job = [{"role": "user", "content": "run the nightly job"}]
    assert agent.generate_reply(messages=job) == "done"
    api.enforce = lambda body: block(kill_switch_violation("incident 42"))
    with pytest.raises(AgentPausedError):
        agent.generate_reply(messages=[{"role": "user", "content": "status?"}])
    with pytest.raises(AgentPausedError):
        agent.generate_reply(messages=job)


# -- the circuit breaker never wedges open -------------------------------------------------------


def test_a_cancelled_trial_request_does_not_wedge_the_breaker_open(api, make_client):
    exe = make_client(api.base_url, request_timeout=5.0)
    breaker = exe._connection.decider.breaker
    api.fault["enforce"] = 503
    for i in range(3):
        exe.enforce_policy("ops-assistant", f"hi {i}")
    assert breaker.is_open
    breaker.reset = 0.0  # the open period is over: the next check is the trial
    api.fault["enforce"] = "hang"

    async def cancel_the_trial() -> None:
        task = asyncio.ensure_future(exe.adecide(CheckRequest(agent_id="ops-assistant", input="trial")))
        while not any(c.body and c.body.get("input") == "trial" for c in api.calls("enforce")):
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_the_trial())
    del api.fault["enforce"]
    api.enforce = lambda body: block(VIOLATION)  # Execlave is back, and blocks
    with pytest.raises(PolicyBlockedError):
        exe.enforce_policy("ops-assistant", "refund 900")
    assert not breaker.is_open


# -- content JSON cannot carry still reaches Execlave --------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [{"amount": math.nan}, {"amount": math.inf}, {"memo": "pay \ud800 now"}, {"memo": "pay\x00now"}],
    ids=["nan", "inf", "lone-surrogate", "nul"],
)
def test_tool_arguments_json_cannot_carry_still_get_a_server_decision(api, make_client, arguments):
    api.enforce = lambda body: (
        block(VIOLATION) if "pay_invoice" in body.get("tools", []) else (200, {"allowed": True})
    )
    exe = make_client(api.base_url, policies=NO_POLICIES)  # the wire only (local engine: its own tests)
    with pytest.raises(PolicyBlockedError):  # the server's block, not "could not evaluate"
        exe.enforce_policy("ops-assistant", "pay", tools=[{"name": "pay_invoice", "arguments": arguments}])


@pytest.mark.parametrize("text", ["refund \ud800 900", "refund\x00 900"], ids=["lone-surrogate", "nul"])
def test_input_json_cannot_carry_still_gets_a_server_decision(api, make_client, text):
    api.enforce = lambda body: block(VIOLATION) if "refund" in json.dumps(body) else (200, {"allowed": True})
    exe = make_client(api.base_url, policies=NO_POLICIES)
    with pytest.raises(PolicyBlockedError):
        exe.enforce_policy("ops-assistant", text)
    with pytest.raises(PolicyBlockedError):
        exe.enforce_policy(
            "ops-assistant", "x", tool_outputs=[{"name": "t", "output": text}], metadata={"m": text}
        )


# -- the key ------------------------------------------------------------------------------------


def test_the_key_is_in_no_attribute_of_the_connection(api, make_client):
    exe = make_client(api.base_url, execlave_otlp_endpoint=api.base_url + "/otlp")

    def walk(obj, seen, depth=0):
        if id(obj) in seen or depth > 4:
            return
        seen.add(id(obj))
        assert KEY not in repr(obj)
        values = vars(obj).values() if hasattr(obj, "__dict__") else ()
        if isinstance(obj, dict):
            values = obj.values()
        for value in values:
            if isinstance(value, (str, bytes, int, float)) or value is None:
                assert KEY not in str(value)
            elif type(value).__module__.startswith("execlave") or isinstance(value, dict):
                walk(value, seen, depth + 1)

    walk(exe, set())


def test_plain_http_to_execlaves_host_is_upgraded_and_elsewhere_warned(caplog, provider):
    caplog.set_level(logging.WARNING, logger="execlave")
    exe = Execlave(KEY, base_url="http://api.execlave.com", tracer_provider=provider)
    try:
        assert exe.base_url == "https://api.execlave.com"
    finally:
        exe.shutdown(0.5)
    exe = Execlave(KEY, base_url="http://execlave.internal.example:8080", tracer_provider=provider)
    try:
        assert [r for r in caplog.records if "unencrypted" in r.getMessage()]
    finally:
        exe.shutdown(0.5)
    caplog.clear()
    exe = Execlave(KEY, base_url="http://127.0.0.1:9", tracer_provider=provider)  # loopback: no warning
    try:
        assert not [r for r in caplog.records if "unencrypted" in r.getMessage()]
    finally:
        exe.shutdown(0.5)


# -- one connection pool per event loop, closed with its loop ------------------------------------


def test_a_round_per_asyncio_run_leaks_no_connection_pool(api, make_client):
    """Sync code that drives a classic agent with ``asyncio.run`` per request: each loop's
    connection pool is closed when its loop shuts down, not kept (with its sockets) for ever."""
    import gc

    from support.requires import require

    autogen = require("autogen")
    from execlave.integrations.autogen import instrument_autogen_agent

    exe = make_client(api.base_url, decision_cache_ttl=0)
    agent = autogen.ConversableAgent("ops", llm_config=False, human_input_mode="NEVER")
    agent.register_reply([autogen.Agent, None], lambda *a, **k: (True, "done"), position=0)
    instrument_autogen_agent(agent, exe, agent_id="ops-assistant")
    pools = exe._connection.api._async
    for i in range(20):
        reply = asyncio.run(agent.a_generate_reply(messages=[{"role": "user", "content": f"job {i}"}]))
        assert reply == "done"
    gc.collect()
    assert len(pools) == 0
    assert len(api.calls("enforce")) == 20


def test_an_agent_id_from_the_registry_cannot_move_the_status_poll_to_another_route(api, make_client):
    """The UUID in the poll's path comes from a server answer: it is one path segment, always."""
    from support.waiting import wait_until

    exe = make_client(api.base_url, heartbeat_interval=0.05)
    hostile = "../../sdk/bypass-windows?x="
    with api.lock:
        api.agents[hostile] = {
            "id": hostile,
            "agentId": "ops-assistant",
            "name": "ops",
            "environment": "production",
        }
    exe.register_agent("ops-assistant")  # 409 -> lookup -> the hostile id
    assert wait_until(lambda: len(api.calls("status-poll")) >= 1 and len(api.calls("heartbeat")) >= 1)
    assert all(
        c.path.startswith("/api/v1/agents/") for c in api.calls("status-poll") + api.calls("heartbeat")
    )


def test_the_background_lookup_never_adopts_another_environments_agent(api, make_client):
    """Only this deployment's agent: a same-named agent of another environment must not decide
    (its policies, its pause) for this one."""
    staging = api.add_agent("ops-assistant", environment="staging")
    api.set_status("ops-assistant", "paused")  # the staging agent is paused
    exe = make_client(api.base_url, status_poll_interval=3600)  # environment "production"; polled by hand
    exe.enforce_policy("ops-assistant", "hi")
    exe._connection.agents.poll_once()  # looks "ops-assistant" up
    exe._connection.agents.poll_once()
    assert len(api.calls("agents.search")) == 1
    exe.enforce_policy("ops-assistant", "hello")  # production is not paused
    assert all(c.body["agentId"] != staging for c in api.calls("enforce"))
    assert not any(staging in c.path for c in api.calls("status-poll"))


def test_the_background_lookup_adopts_this_environments_agent(api, make_client):
    production = api.add_agent("ops-assistant", environment="production")
    api.add_agent("ops-assistant", environment="staging")
    exe = make_client(api.base_url, status_poll_interval=3600)
    exe.enforce_policy("ops-assistant", "hi")
    exe._connection.agents.poll_once()
    exe.enforce_policy("ops-assistant", "hello")
    assert api.calls("enforce")[-1].body["agentId"] == production


def test_registering_an_existing_agent_of_another_environment_finds_that_one(api, make_client):
    api.add_agent("ops-assistant", environment="production")
    staging = api.add_agent("ops-assistant", environment="staging")
    exe = make_client(api.base_url)  # a production client registering its staging agent
    assert exe.register_agent("ops-assistant", environment="staging")["id"] == staging


@pytest.mark.parametrize(
    "answer",
    [
        {"valid": False, "reason": "action_context_mismatch", "data": {"valid": True}},
        {"data": {"valid": False, "reason": "certificate_expired"}, "valid": True},
        {"data": {"valid": "true"}},
    ],
    ids=["refusal-outside", "refusal-inside", "not-a-boolean"],
)
def test_an_approval_is_trusted_only_when_no_layer_of_the_verify_answer_refuses_it(api, make_client, answer):
    from execlave import ApprovalVerificationError

    api.require_approval = lambda body: True
    api.approval_outcome = "approved"
    api._approvals_verify = lambda body, params, record: (200, answer)
    exe = make_client(api.base_url)
    with pytest.raises(ApprovalVerificationError):  # CertificateMismatchError is one
        exe.enforce_policy("pay-agent", "pay invoice 7", tools=["pay_invoice"])


def test_a_404_for_an_agent_execlave_does_not_know_says_so(api, make_client):
    api.enforce = lambda body: (404, {"error": {"code": "NOT_FOUND", "message": "Agent not found"}})
    exe = make_client(api.base_url)
    with pytest.raises(EnforcementUnavailableError) as info:
        exe.enforce_policy("ops-assistant", "hi")
    assert "Agent not found" in str(info.value) and "register_agent" in str(info.value)
