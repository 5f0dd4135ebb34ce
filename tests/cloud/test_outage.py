"""When Execlave cannot decide: ``enforcement_on_outage`` (default fail_open, as the published
client), the circuit breaker, and every fail-open pass on the span and in Execlave's audit trail."""

import pytest

from execlave import EnforcementUnavailableError, Execlave
from support.otlp import closed_port

from .conftest import KEY

OUTAGES = [500, 502, 503, 429, "malformed", "hang"]


@pytest.mark.parametrize("fault", OUTAGES)
def test_fail_open_passes_and_reports_the_bypass_by_flush(api, make_client, exporter, fault):
    api.fault["enforce"] = fault
    exe = make_client(api.base_url, request_timeout=0.3)
    assert exe.enforce_policy("ops-assistant", "hi")["allowed"]
    assert exe.stats()["bypasses"] == 1
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "enforce_policy ops-assistant"]
    assert span.attributes["execlave.enforcement.bypassed"] is True
    assert any(e.name == "execlave.enforcement.bypass" for e in span.events)
    assert exe.flush(3.0)
    (window,) = api.bypass_windows
    assert window["agentId"] == "ops-assistant" and window["count"] == 1
    assert window["reason"] in ("server_error", "network_error")


@pytest.mark.parametrize("fault", OUTAGES)
def test_fail_closed_stops_the_round(api, make_client, fault):
    api.fault["enforce"] = fault
    exe = make_client(api.base_url, request_timeout=0.3, enforcement_on_outage="fail_closed")
    with pytest.raises(EnforcementUnavailableError):
        exe.enforce_policy("ops-assistant", "hi")
    assert api.bypass_windows == []


def test_nothing_listening_fails_open_by_default(provider):
    exe = Execlave(
        KEY, base_url=f"http://127.0.0.1:{closed_port()}", request_timeout=0.3, tracer_provider=provider
    )
    try:
        assert exe.enforce_policy("ops-assistant", "hi")["allowed"]
        assert exe.stats()["bypasses"] == 1
    finally:
        exe.shutdown(0.5)


def test_circuit_breaker_stops_calling_then_recovery_closes_the_window(api, make_client):
    api.fault["enforce"] = 503
    exe = make_client(api.base_url)
    for i in range(5):
        exe.enforce_policy("ops-assistant", f"hi {i}")
    assert len(api.calls("enforce")) == 3  # the breaker opened after three failures
    assert exe.stats()["circuit_open"] == 1
    assert exe.stats()["bypasses"] == 5
    assert exe.flush(3.0)
    reasons = sorted(w["reason"] for w in api.bypass_windows)
    assert reasons == ["circuit_breaker_open", "server_error"]
    assert sum(w["count"] for w in api.bypass_windows) == 5


def test_bypass_reports_are_retried_until_delivered(api, make_client):
    api.fault["enforce"] = 503
    api.fault["bypass"] = 503
    exe = make_client(api.base_url)
    exe.enforce_policy("ops-assistant", "hi")
    assert exe.flush(2.0) is False
    del api.fault["bypass"]
    assert exe.flush(2.0) is True
    assert len(api.bypass_windows) == 1


@pytest.mark.parametrize("mode", ["open", "closed", "FAIL_OPEN", None])
def test_invalid_outage_mode_is_a_clear_error_with_or_without_a_key(mode, provider, monkeypatch):
    monkeypatch.delenv("EXECLAVE_API_KEY", raising=False)
    with pytest.raises(ValueError, match="enforcement_on_outage must be 'fail_open' or 'fail_closed'"):
        Execlave(enforcement_on_outage=mode, tracer_provider=provider)


def test_open_bypass_windows_are_bounded_however_many_agents(api, make_client):
    api.fault["enforce"] = 503
    exe = make_client(api.base_url)
    windows = exe._connection.bypass
    for i in range(1200):
        windows.record(f"agent-{i}", "server_error", "fail_open_server_error")
    assert len(windows._open) <= 500 and len(windows._closed) <= 500
    assert windows._dropped["windows"] > 0  # the loss is counted, to be reported
    assert exe.flush(5.0)
    assert len(api.bypass_windows) == 500
    dropped = [c.body["dropped"] for c in api.calls("bypass") if "dropped" in c.body]
    assert dropped and dropped[0]["windows"] == 700


def test_enforcement_keeps_working_after_shutdown(api, make_client):
    exe = make_client(api.base_url)
    exe.shutdown(0.5)
    assert exe.enforce_policy("ops-assistant", "hi")["allowed"]
    assert len(api.calls("enforce")) == 1
