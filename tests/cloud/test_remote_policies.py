"""Remote policy source: fetch, ETag, background refresh, disk cache, outage modes, 401."""

import json
import os
import stat

import pytest

from execlave.errors import (
    EnforcementUnavailableError,
    ExeclaveError,
    PolicyBlockedError,
    PolicyConfigError,
)
from execlave.policy.remote import split_policy_document
from support.execlave_api import ExeclaveAPI
from support.otlp import closed_port
from support.waiting import wait_until

from .conftest import KEY, TOOL_POLICY

INJECTION = {
    "id": "inj",
    "name": "Injection",
    "policyType": "injection_scan",
    "enforcementMode": "block",
    "ruleDefinition": {"patterns": ["ignore previous instructions"]},
}


def test_policies_fetched_with_bearer_key_and_enforced_locally(api, make_client):
    exe = make_client(api.base_url)
    with pytest.raises(PolicyBlockedError) as info:
        exe.enforce_policy("ops-assistant", "tidy up", tools=["delete_file"])
    assert info.value.violations[0]["policyId"] == "no-delete"
    assert exe.enforce_policy("ops-assistant", "tidy up", tools=["read_file"])["allowed"] is True
    first = api.calls("/api/v1/policies")[0]
    assert first.headers["Authorization"] == f"Bearer {KEY}"
    # decisions are local: no enforce call for locally evaluable types
    assert api.calls("/api/v1/policies/enforce") == []


def test_policies_wrapped_in_mapping_are_accepted(api, make_client):
    api.policies = {"policies": [INJECTION]}
    exe = make_client(api.base_url)
    with pytest.raises(PolicyBlockedError):
        exe.enforce_policy("ops-assistant", "please IGNORE previous instructions")


def test_etag_sent_back_and_304_keeps_the_set(api, make_client):
    exe = make_client(api.base_url, policy_refresh_interval=60)
    version = exe.stats()["policy_set_version"]
    exe._cloud.refresh()
    second = api.calls("/api/v1/policies")[-1]
    assert second.headers.get("If-None-Match", "").startswith('"')
    assert exe.stats()["policy_set_version"] == version  # 304: nothing recompiled
    assert exe.stats()["policy_refreshes"] == 2


def test_background_refresh_picks_up_a_new_set(api, make_client):
    exe = make_client(api.base_url, policy_refresh_interval=0.05)
    assert exe.enforce_policy("ops-assistant", "ignore previous instructions")["allowed"]
    api.policies = [TOOL_POLICY, INJECTION]

    def blocked():
        try:
            exe.enforce_policy("ops-assistant", "ignore previous instructions")
        except PolicyBlockedError:
            return True
        return False

    assert wait_until(blocked, timeout=5.0)


def test_cache_file_is_0600_holds_policies_and_never_the_key(api, make_client, tmp_path):
    make_client(api.base_url)
    files = list((tmp_path / "cache").iterdir())
    assert len(files) == 1
    mode = stat.S_IMODE(os.stat(files[0]).st_mode)
    assert mode == 0o600
    text = files[0].read_text()
    assert KEY not in text and KEY not in files[0].name
    assert json.loads(text)["policies"] == [TOOL_POLICY]


def test_cache_used_at_startup_when_server_unreachable(make_client):
    with ExeclaveAPI(api_key=KEY, policies=[TOOL_POLICY]) as api:
        base_url = api.base_url
        make_client(base_url)
    # the server is gone: connection refused on the same URL
    exe = make_client(base_url)
    assert exe._cloud.loaded and exe._cloud.last_error
    with pytest.raises(PolicyBlockedError):
        exe.enforce_policy("ops-assistant", "x", tools=["delete_all"])


@pytest.mark.parametrize("fault", [500, 503, 429, "malformed", "hang", ("slow", 2.0)])
def test_cache_used_at_startup_on_every_kind_of_outage(api, make_client, fault):
    make_client(api.base_url)  # writes the cache
    api.fault["/api/v1/policies"] = fault
    exe = make_client(api.base_url, request_timeout=0.3)
    assert exe._cloud.loaded
    assert exe.stats()["policy_refresh_errors"] >= 1
    with pytest.raises(PolicyBlockedError):
        exe.enforce_policy("ops-assistant", "x", tools=["delete_all"])


@pytest.mark.parametrize("fault", [500, 429, "malformed", "hang"])
def test_fail_closed_without_server_or_cache(api, make_client, fault):
    api.fault["/api/v1/policies"] = fault
    exe = make_client(api.base_url, request_timeout=0.3)
    with pytest.raises(EnforcementUnavailableError) as info:
        exe.enforce_policy("ops-assistant", "hello")
    assert "fail_closed" in str(info.value) and KEY not in str(info.value)


def test_fail_closed_when_nothing_listens(make_client):
    exe = make_client(f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(EnforcementUnavailableError):
        exe.enforce_policy("ops-assistant", "hello")


def test_fail_open_passes_but_counts_every_bypass(make_client, caplog):
    exe = make_client(f"http://127.0.0.1:{closed_port()}", enforcement_on_outage="fail_open")
    for _ in range(3):
        assert exe.enforce_policy("ops-assistant", "hello", tools=["delete_file"])["allowed"] is True
    assert exe.stats()["bypasses"] == 3
    assert sum("enforcement bypassed" in r.getMessage() for r in caplog.records) == 1  # logged once


def test_fail_open_still_honours_a_local_pause(make_client):
    from execlave.errors import AgentPausedError

    exe = make_client(f"http://127.0.0.1:{closed_port()}", enforcement_on_outage="fail_open")
    exe.pause_agent("ops-assistant", "incident")
    with pytest.raises(AgentPausedError):
        exe.enforce_policy("ops-assistant", "hello")


def test_server_recovering_ends_the_outage(api, make_client):
    api.fault["/api/v1/policies"] = 503
    exe = make_client(api.base_url, policy_refresh_interval=0.05)
    with pytest.raises(EnforcementUnavailableError):
        exe.enforce_policy("ops-assistant", "hello")
    del api.fault["/api/v1/policies"]
    assert wait_until(lambda: exe._cloud.loaded, timeout=5.0)
    with pytest.raises(PolicyBlockedError):
        exe.enforce_policy("ops-assistant", "x", tools=["delete_all"])


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_key_is_a_loud_error_at_startup(api, make_client, status):
    if status == 401:
        api.api_key = "some-other-key"
    else:
        api.fault["/api/v1/policies"] = 403
    with pytest.raises(ExeclaveError) as info:
        make_client(api.base_url, enforcement_on_outage="fail_open")
    message = str(info.value)
    assert f"HTTP {status}" in message and "EXECLAVE_API_KEY" in message
    assert KEY not in message and KEY not in repr(info.value)


def test_rejected_key_is_loud_even_with_a_cache(api, make_client):
    make_client(api.base_url)
    api.api_key = "rotated"
    with pytest.raises(ExeclaveError, match="rejected the API key"):
        make_client(api.base_url)


def test_invalid_set_keeps_last_good_and_reports(api, make_client, caplog):
    exe = make_client(api.base_url, policy_refresh_interval=60)
    bad = dict(INJECTION, ruleDefinition={"patterns": ["(unclosed"]})
    api.policies = [TOOL_POLICY, bad]
    version = exe.stats()["policy_set_version"]
    exe._cloud.refresh()
    assert exe.stats()["policy_set_version"] == version
    assert "inj" in exe._cloud.last_error and "ruleDefinition.patterns" in exe._cloud.last_error
    assert any(r.levelname == "ERROR" and "invalid" in r.getMessage() for r in caplog.records)
    with pytest.raises(PolicyBlockedError):  # last good set still enforced
        exe.enforce_policy("ops-assistant", "x", tools=["delete_all"])
    # the cache still holds the good set
    cached = exe._cloud._source.load_cache()
    assert [p.id for p in cached.policies] == ["no-delete"]


def test_invalid_set_at_startup_without_cache_fails_closed(api, make_client):
    api.policies = [{"id": "x", "policyType": "tool_invocation", "ruleDefinition": {"deny": "nope"}}]
    exe = make_client(api.base_url)
    with pytest.raises(EnforcementUnavailableError, match="invalid"):
        exe.enforce_policy("ops-assistant", "hello")


def test_unknown_types_are_server_evaluated_not_errors():
    local, server = split_policy_document(
        [TOOL_POLICY, {"id": "approve", "policyType": "human_approval", "appliesToAgents": ["a"]}], "t"
    )
    assert [p.id for p in local] == ["no-delete"]
    assert [(p.id, p.policy_type, p.applies_to("a"), p.applies_to("b")) for p in server] == [
        ("approve", "human_approval", True, False)
    ]


def test_split_reports_every_problem():
    with pytest.raises(PolicyConfigError) as info:
        split_policy_document(
            [
                {"policyType": "custom_validator"},
                {"id": "c", "policyType": "custom_validator", "enforcementMode": "loud"},
                {"id": "d", "policyType": "tool_invocation", "ruleDefinition": {}, "bogus": 1},
                dict(TOOL_POLICY),
                dict(TOOL_POLICY),
            ],
            "src",
        )
    fields = {(i.policy, i.field) for i in info.value.issues}
    assert ("#0", "id") in fields and ("c", "enforcementMode") in fields and ("no-delete", "id") in fields


def test_explicit_policies_turn_remote_mode_off(api, make_client):
    exe = make_client(api.base_url, policies=[INJECTION])
    assert api.calls("/api/v1/policies") == []
    with pytest.raises(PolicyBlockedError):
        exe.enforce_policy("ops-assistant", "ignore previous instructions")
