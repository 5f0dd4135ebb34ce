"""When Execlave cannot decide: ``enforcement_on_outage`` (default fail_open, as the published
client), the circuit breaker, and every fail-open pass on the span and in Execlave's audit trail."""

import pytest

from execlave import EnforcementUnavailableError, Execlave
from support.otlp import closed_port

from .conftest import KEY

OUTAGES = [500, 502, 503, 429, "hang"]  # a malformed 200 is no decision: test_hostile_answers.py


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


def test_flush_and_shutdown_keep_their_bound_when_reports_and_spans_both_hang(api, make_client):
    """A bound, not a speed target: reports and spans share the one timeout (not one each)."""
    import time

    api.fault["enforce"] = 503
    exe = make_client(api.base_url, request_timeout=5.0)
    exe.enforce_policy("ops-assistant", "hi")  # a bypass to report, and a span to export
    api.fault["bypass"] = "hang"
    api.fault["ingest"] = "hang"
    started = time.monotonic()
    assert exe.flush(1.0) is False
    flushed = time.monotonic() - started
    started = time.monotonic()
    assert exe.shutdown(1.0) is False
    shut = time.monotonic() - started
    assert flushed < 1.0 + 0.5, flushed
    assert shut < 1.0 + 0.5, shut


def test_a_retried_loss_report_keeps_its_drop_id(api, make_client):
    """A loss report whose answer was lost is sent again as the same report (same dropId), so
    Execlave can tell a retry from a second loss."""
    exe = make_client(api.base_url)
    windows = exe._connection.bypass
    for i in range(600):
        windows.record(f"agent-{i}", "server_error", "fail_open_server_error")
    api.fault["bypass"] = 503
    assert exe.flush(2.0) is False
    del api.fault["bypass"]
    assert exe.flush(5.0) is True
    drop_ids = {c.body["dropped"]["dropId"] for c in api.calls("bypass") if "dropped" in c.body}
    assert len(drop_ids) == 1


def test_windows_dropped_while_a_report_is_in_flight_are_still_reported(api, make_client):
    exe = make_client(api.base_url)
    windows = exe._connection.bypass
    windows._max_buffered = 2
    for i in range(3):  # one window dropped
        windows.record(f"agent-{i}", "server_error", "fail_open_server_error")
    windows._tick(close_all=True)
    original = api._bypass
    late = []

    def bypass_route(body, params, record):
        if not late:  # during the first report: three more windows, and more drops
            late.append(True)
            for i in range(3):
                windows.record(f"late-{i}", "server_error", "fail_open_server_error")
            windows._tick(close_all=True)
        return original(body, params, record)

    api._bypass = bypass_route
    assert exe.flush(5.0) is True
    reported = sum(c.body.get("dropped", {}).get("windows", 0) for c in api.calls("bypass"))
    assert reported + len(api.bypass_windows) == 6


def test_window_counters_stay_within_the_platforms_bounds(api, make_client):
    """A window over the server's bounds (count <= 1e9, consecutiveFailures <= 1e6) would get the
    whole report refused and dropped: the counters saturate instead."""
    exe = make_client(api.base_url)
    windows = exe._connection.bypass
    windows.record("ops-assistant", "server_error", "fail_open_server_error", consecutive_failures=5_000_000)
    next(iter(windows._open.values()))["wire"]["count"] = 1_000_000_000
    windows.record("ops-assistant", "server_error", "fail_open_server_error", consecutive_failures=5_000_001)
    assert exe.flush(2.0)
    (window,) = api.bypass_windows
    assert window["count"] == 1_000_000_000 and window["consecutiveFailures"] == 1_000_000


def test_an_outage_pass_is_logged_once_at_warning_with_the_fix(api, make_client, caplog):
    import logging

    caplog.set_level(logging.DEBUG, logger="execlave")
    api.fault["enforce"] = 503
    exe = make_client(api.base_url)
    for i in range(5):
        exe.enforce_policy("ops-assistant", f"hi {i}")
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "could not decide" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert api.base_url in warnings[0].getMessage() and "fail_closed" in warnings[0].getMessage()
