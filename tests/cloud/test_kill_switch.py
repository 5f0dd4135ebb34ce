"""The kill switch as the platform does it: the enforce endpoint's 403 and the status poll of
agents whose UUID is known; local pause_agent() is a separate switch the server never lifts."""

import pytest

from execlave import AgentPausedError, ExeclaveAuthError, ExeclaveError
from support.execlave_api import block, kill_switch_violation
from support.waiting import wait_until


def test_register_agent_sends_what_the_published_client_sends(api, make_client):
    exe = make_client(api.base_url)
    agent = exe.register_agent("ops-assistant", "Ops", description="restarts things")
    (call,) = api.calls("agents.create")
    assert call.body == {
        "agentId": "ops-assistant",
        "name": "Ops",
        "type": "chatbot",
        "platform": "custom",
        "environment": "production",
        "description": "restarts things",
    }
    assert agent["agentId"] == "ops-assistant" and agent["id"] in api.agents


def test_register_existing_agent_looks_it_up(api, make_client):
    known = api.add_agent("ops-assistant")
    exe = make_client(api.base_url)
    assert exe.register_agent("ops-assistant")["id"] == known
    assert [c.query for c in api.calls("agents.search")] == [{"search": ["ops-assistant"]}]


def test_register_errors(api, make_client):
    exe = make_client(api.base_url)
    api.fault["agents.create"] = 401
    with pytest.raises(ExeclaveAuthError):
        exe.register_agent("ops-assistant")
    api.fault["agents.create"] = 500
    with pytest.raises(ExeclaveError, match="HTTP 500"):
        exe.register_agent("ops-assistant")


def test_dashboard_pause_stops_the_next_round_and_resume_restores_it(api, make_client):
    exe = make_client(api.base_url)
    exe.register_agent("ops-assistant")
    exe.enforce_policy("ops-assistant", "hi")  # cached allow
    api.set_status("ops-assistant", "paused")
    # The status poll stops the agent locally, without a round trip, cached allow or not.
    assert wait_until(lambda: _paused(exe, "ops-assistant"))
    before = len(api.calls("enforce"))
    with pytest.raises(AgentPausedError):
        exe.enforce_policy("ops-assistant", "hi")
    assert len(api.calls("enforce")) == before
    exe.enforce_policy("other-agent", "hi")  # only that agent
    api.set_status("ops-assistant", "active")
    assert wait_until(lambda: not _paused(exe, "ops-assistant"))
    assert exe.enforce_policy("ops-assistant", "hi")["allowed"]


def _paused(exe, agent_id):
    try:
        exe.enforce_policy(agent_id, "probe")
    except AgentPausedError:
        return True
    return False


def test_kill_switch_403_is_agent_paused(api, make_client):
    api.enforce = lambda body: block(kill_switch_violation("incident 42"))
    exe = make_client(api.base_url)
    with pytest.raises(AgentPausedError, match="incident 42"):
        exe.enforce_policy("ops-assistant", "hi")


def test_unregistered_agent_is_resolved_by_search_and_polled(api, make_client):
    agent_uuid = api.add_agent("ops-assistant")
    exe = make_client(api.base_url)
    exe.enforce_policy("ops-assistant", "hi")
    assert wait_until(
        lambda: any(c.path.endswith(f"{agent_uuid}/status-poll") for c in api.calls("status-poll"))
    )
    api.set_status("ops-assistant", "paused")
    assert wait_until(lambda: _paused(exe, "ops-assistant"))


def test_server_resume_never_lifts_a_local_pause(api, make_client):
    exe = make_client(api.base_url)
    exe.register_agent("ops-assistant")
    exe.pause_agent("ops-assistant", "local hold")
    api.set_status("ops-assistant", "paused")
    assert wait_until(lambda: len(api.calls("status-poll")) >= 2)
    api.set_status("ops-assistant", "active")
    polls = len(api.calls("status-poll"))
    assert wait_until(lambda: len(api.calls("status-poll")) >= polls + 2)
    with pytest.raises(AgentPausedError, match="local hold"):
        exe.enforce_policy("ops-assistant", "hi")
    exe.resume_agent("ops-assistant")
    assert exe.enforce_policy("ops-assistant", "hi")["allowed"]


def test_heartbeat_for_registered_agents(api, make_client):
    exe = make_client(api.base_url, heartbeat_interval=0.05)
    agent = exe.register_agent("ops-assistant")
    exe.enforce_policy("ops-assistant", "hi")
    assert wait_until(lambda: any(h[0] == agent["id"] and h[1] for h in api.heartbeats))


@pytest.mark.parametrize("fault", [500, "malformed", "hang"])
def test_status_poll_faults_keep_the_current_state(api, make_client, fault):
    exe = make_client(api.base_url, request_timeout=0.2)
    exe.register_agent("ops-assistant")
    api.fault["status-poll"] = fault
    assert wait_until(lambda: len(api.calls("status-poll")) >= 2)
    assert exe.enforce_policy("ops-assistant", "hi")["allowed"]


def test_agent_tracking_is_bounded_against_an_id_flood(api, make_client):
    from execlave.connection.agents import LOOKUPS_PER_ROUND, MAX_TRACKED

    exe = make_client(api.base_url, status_poll_interval=3600)  # drive the poller by hand
    agents = exe._connection.agents
    for i in range(MAX_TRACKED + 500):
        agents.seen(f"agent-{i}")
    assert len(agents._seen) == MAX_TRACKED
    agents.poll_once()
    assert len(api.calls("agents.search")) == LOOKUPS_PER_ROUND
