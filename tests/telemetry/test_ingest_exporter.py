"""The trace-ingest exporter behind execlave's bounded batch processor: real OTel SDK spans from
governed spans, posted to a strict ingest receiver on 127.0.0.1 (support/ingest_receiver.py).

What each record holds, how blocked rounds, tool spans, errors and content map, how the
platform's answers (errors[], 4xx, 401, 402, 429/5xx, the ``data`` envelope) are counted, and
that export stays bounded when Execlave is down."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from execlave.connection.ingest import MAX_CONTENT_CHARS, TraceIngestExporter
from execlave.errors import AgentPausedError, EnforcementUnavailableError, PolicyBlockedError
from execlave.policy.pii import mask_pii
from execlave.policy.types import ALLOW
from execlave.telemetry import Telemetry
from support.ingest_receiver import INGEST, IngestReceiver
from support.secrets import INGEST_KEY

from .conftest import block, decision

SLACK = 3.0  # correctness bound, not a speed target (see test_telemetry_flush.py)
AGENT = {"gen_ai.agent.name": "ops", "gen_ai.agent.id": "ops-assistant", "gen_ai.conversation.id": "sess-1",
         "user.id": "u-42"}  # fmt: skip
ROUND = {"gen_ai.operation.name": "invoke_agent", **AGENT}


def tool(op: str, name: str, call_id: str = "call-1") -> dict[str, Any]:
    # A requested call's check is no GenAI operation: execlave.operation, not gen_ai.operation.name.
    if op == "check_tool":
        phase: dict[str, Any] = {"execlave.operation": op, "execlave.tool.phase": "requested"}
    else:
        phase = {"gen_ai.operation.name": op}
    return {
        "gen_ai.tool.name": name,
        "gen_ai.tool.call.id": call_id,
        **phase,
        **AGENT,
    }


Make = Callable[..., tuple[Telemetry, TraceIngestExporter]]


@pytest.fixture
def pipeline(make_telemetry: Callable[..., Telemetry]) -> Make:
    """execlave's telemetry on its own SDK provider, with the ingest exporter the client builds."""

    def make(
        rx: IngestReceiver | str, *, capture: bool = False, timeout: float = 5.0, **telemetry: Any
    ) -> tuple[Telemetry, Any]:
        endpoint = rx if isinstance(rx, str) else rx.endpoint
        exporter = TraceIngestExporter(
            api_key=INGEST_KEY,
            base_url=endpoint,
            environment="staging",
            capture_content=capture,
            masker=mask_pii,
            timeout=timeout,
        )
        tel = make_telemetry(
            masker=mask_pii,
            tracer_provider=TracerProvider(),
            execlave_exporter=exporter,
            capture_content=capture,
            schedule_delay=0.01,
            **telemetry,
        )
        return tel, exporter

    return make


def allowed_round(tel: Telemetry) -> None:
    with tel.governed_span("invoke_agent ops", attributes=ROUND, check=lambda: ALLOW) as governed:
        governed.record_content("gen_ai.input.messages", "Mail alice@example.com the status of web-1")
        with tel.governed_span(
            "check_tool get_status", attributes=tool("check_tool", "get_status"), check=lambda: ALLOW
        ):
            pass
        with tel.governed_span(
            "execute_tool get_status", attributes=tool("execute_tool", "get_status"), check=lambda: ALLOW
        ) as run:
            run.record_content("gen_ai.tool.call.result", "healthy; billed to 4111 1111 1111 1111")


def blocked_round(tel: Telemetry) -> None:
    with (
        pytest.raises(PolicyBlockedError),
        tel.governed_span("invoke_agent ops", attributes=ROUND, check=lambda: ALLOW),
    ):
        with tel.governed_span(
            "check_tool shell",
            attributes=tool("check_tool", "shell", "call-2"),
            check=lambda: decision("block", block("deny-shell")),
            raise_on_block=False,
        ):
            pass
        raise PolicyBlockedError([block("deny-shell")])


def by_span(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["spanName"]: r for r in records}


# -- records -------------------------------------------------------------------------------


def test_an_allowed_round_with_its_tool_spans(pipeline: Make) -> None:
    with IngestReceiver(INGEST_KEY) as rx:
        tel, exporter = pipeline(rx)
        before = datetime.now(timezone.utc)
        allowed_round(tel)
        assert tel.flush(5.0)
    assert rx.invalid == []
    records = by_span(rx.records)
    assert set(records) == {"invoke_agent ops", "check_tool get_status", "execute_tool get_status"}
    round_, check, execute = (
        records["invoke_agent ops"],
        records["check_tool get_status"],
        records["execute_tool get_status"],
    )
    for record in records.values():
        assert record["agentId"] == "ops-assistant"
        assert record["sessionId"] == "sess-1"
        assert record["userId"] == "u-42"
        assert record["environment"] == "staging"
        assert record["status"] == "success"
        assert isinstance(record["durationMs"], int) and record["durationMs"] >= 0
        started = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
        assert abs((started - before).total_seconds()) < 60
        assert record["traceId"].startswith("tr_") and len(record["traceId"]) == 19
        assert "input" not in record and "output" not in record  # content capture is off
        assert record["metadata"]["contentCaptured"] is False
        assert record["metadata"]["otelTraceId"] == round_["metadata"]["otelTraceId"]
    assert len({r["traceId"] for r in records.values()}) == 3
    assert round_["spanType"] == "agent" and "parentTraceId" not in round_
    assert check["spanType"] == execute["spanType"] == "tool"
    assert check["parentTraceId"] == execute["parentTraceId"] == round_["traceId"]
    assert check["metadata"]["toolPhase"] == "requested" and execute["metadata"]["toolPhase"] == "executed"
    assert check["metadata"]["toolName"] == "get_status" and check["metadata"]["toolCallId"] == "call-1"
    assert round_["metadata"]["policyDecision"] == "allow"
    assert exporter.stats()["traces_sent"] == 3
    assert tel.stats()["traces_sent"] == 3 and tel.stats()["spans_exported"] == 3


def test_a_blocked_round_is_policy_blocked(pipeline: Make) -> None:
    with IngestReceiver(INGEST_KEY) as rx:
        tel, _ = pipeline(rx)
        blocked_round(tel)
        assert tel.flush(5.0)
    assert rx.invalid == []
    records = by_span(rx.records)
    round_, check = records["invoke_agent ops"], records["check_tool shell"]
    for record in (round_, check):
        assert record["status"] == "policy_blocked"
        assert record["errorType"] == "PolicyBlockedError"
        assert record["errorMessage"] == "blocked by policy deny-shell"
        assert record["metadata"]["policyDecision"] == "block"
        assert record["metadata"]["policyIds"] == ["deny-shell"]
    assert check["parentTraceId"] == round_["traceId"]
    (violation,) = check["metadata"]["violations"]
    assert violation == {
        "policyId": "deny-shell",
        "policyName": "deny shell",
        "policyType": "tool_invocation",
        "enforcementMode": "block",
        "severity": "high",
        "target": "tool_call",
        "toolName": "shell",
        "message": "deny-shell violated",
    }


def test_paused_agents_manual_checks_and_execlave_errors(pipeline: Make) -> None:
    def paused() -> Any:
        raise AgentPausedError("ops-assistant", "incident 42")

    def unavailable() -> Any:
        raise EnforcementUnavailableError(
            "execlave could not evaluate policies (ConnectError); failing closed"
        )

    with IngestReceiver(INGEST_KEY) as rx:
        tel, _ = pipeline(rx)
        with (
            pytest.raises(AgentPausedError),
            tel.governed_span("invoke_agent ops", attributes=ROUND, check=paused),
        ):
            pass
        manual = {"gen_ai.agent.id": "ops-assistant", "execlave.operation": "enforce_policy"}
        with tel.governed_span("enforce_policy ops-assistant", attributes=manual, check=lambda: ALLOW):
            pass
        with (
            pytest.raises(EnforcementUnavailableError),
            tel.governed_span("execute_tool x", check=unavailable),
        ):
            pass
        assert tel.flush(5.0)
    assert rx.invalid == []
    records = by_span(rx.records)
    paused_round = records["invoke_agent ops"]
    assert paused_round["status"] == "policy_blocked" and paused_round["metadata"]["agentPaused"] is True
    assert paused_round["errorType"] == "AgentPausedError"
    assert paused_round["errorMessage"] == "agent paused (kill switch)"
    assert records["enforce_policy ops-assistant"]["spanType"] == "guardrail"
    assert records["enforce_policy ops-assistant"]["status"] == "success"
    failed = records["execute_tool x"]
    assert failed["status"] == "error" and failed["errorType"] == "EnforcementUnavailableError"
    assert "failing closed" in failed["errorMessage"]  # execlave's own message, sent with capture off
    assert failed["metadata"]["enforcementUnavailable"] is True and "agentId" not in failed


@pytest.mark.parametrize("capture", [False, True])
def test_an_app_error_is_error_with_its_message_only_when_capture_is_on(
    pipeline: Make, capture: bool
) -> None:
    with IngestReceiver(INGEST_KEY) as rx:
        tel, _ = pipeline(rx, capture=capture)
        with (
            pytest.raises(ValueError),
            tel.governed_span("invoke_agent ops", attributes=ROUND, check=lambda: ALLOW),
        ):
            raise ValueError("customer bob@example.com not found")
        assert tel.flush(5.0)
    (record,) = rx.records
    assert record["status"] == "error"
    assert record["errorType"] == "ValueError"
    if capture:
        assert record["errorMessage"] == "customer [EMAIL] not found"
    else:
        assert record["errorMessage"] == "ValueError (message not sent: content capture is off)"
    assert "bob@example.com" not in str(rx.requests[0].raw)


def test_content_is_sent_masked_and_bounded_only_when_capture_is_on(pipeline: Make) -> None:
    with IngestReceiver(INGEST_KEY) as rx:
        # telemetry's own attribute cap (8192 by default) raised, so the exporter's cap is what is tested
        tel, _ = pipeline(rx, capture=True, max_attribute_length=2 * MAX_CONTENT_CHARS)
        allowed_round(tel)
        with tel.governed_span("invoke_agent ops", attributes=ROUND, check=lambda: ALLOW) as governed:
            governed.record_content(
                "gen_ai.input.messages", "x" * (MAX_CONTENT_CHARS + 10) + " alice@example.com"
            )
        assert tel.flush(5.0)
    assert rx.invalid == []
    rounds = [r for r in rx.records if r["spanType"] == "agent"]
    assert rounds[0]["input"] == "Mail [EMAIL] the status of web-1"
    assert rounds[0]["metadata"]["contentCaptured"] is True
    (execute,) = [r for r in rx.records if r["metadata"]["spanName"] == "execute_tool get_status"]
    assert execute["output"] == "healthy; billed to [CREDIT_CARD]"
    assert len(rounds[1]["input"]) == MAX_CONTENT_CHARS and rounds[1]["metadata"]["inputTruncated"] is True
    raw = b"".join(r.raw for r in rx.requests)
    assert b"alice@example.com" not in raw and b"4111 1111" not in raw


def test_content_on_spans_is_not_sent_when_the_exporter_has_capture_off(make_telemetry: Any) -> None:
    """Capture decided by the exporter too: content another path put on a span stays home."""
    with IngestReceiver(INGEST_KEY) as rx:
        exporter = TraceIngestExporter(api_key=INGEST_KEY, base_url=rx.endpoint, masker=mask_pii)
        tel = make_telemetry(
            tracer_provider=TracerProvider(), execlave_exporter=exporter, capture_content=True
        )
        allowed_round(tel)
        assert tel.flush(5.0)
    assert rx.records and all("input" not in r and "output" not in r for r in rx.records)


# -- answers -------------------------------------------------------------------------------


def test_per_trace_errors_are_counted(pipeline: Make, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="execlave")
    with IngestReceiver(INGEST_KEY, envelope=True) as rx:
        rx.reject = lambda rec: (
            ("OUTCOME_EVIDENCE_REQUIRED", "needs evidence") if rec["spanType"] == "tool" else None
        )
        tel, _ = pipeline(rx)
        allowed_round(tel)
        assert tel.flush(5.0)
        allowed_round(tel)
        assert tel.flush(5.0)
    stats = tel.stats()
    assert stats["traces_rejected"] == 4 and stats["traces_sent"] == 2
    assert [r["spanType"] for r in rx.records] == ["agent", "agent"]
    warnings = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(warnings) == 1 and "OUTCOME_EVIDENCE_REQUIRED" in warnings[0]


def test_a_refused_batch_is_counted_and_not_retried(pipeline: Make) -> None:
    with IngestReceiver(INGEST_KEY) as rx:
        rx.fault = (400, {"error": {"code": "VALIDATION_ERROR", "message": "bad"}}, {})
        tel, _ = pipeline(rx)
        allowed_round(tel)
        assert tel.flush(5.0) is False
    assert len([r for r in rx.requests if r.path == INGEST]) == 1
    assert tel.stats()["traces_rejected"] == 3 and tel.stats()["traces_sent"] == 0


def test_a_rejected_key_is_not_retried_and_says_what_to_fix(
    pipeline: Make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="execlave")
    with IngestReceiver("another-key") as rx:
        tel, _ = pipeline(rx)
        allowed_round(tel)
        assert tel.flush(5.0) is False
    assert len(rx.requests) == 1
    stats = tel.stats()
    assert stats["traces_undelivered"] == 3 and stats["trace_posts_failed"] == 1
    assert any("EXECLAVE_API_KEY" in r.getMessage() for r in caplog.records)


def test_plan_limit_pauses_posting(pipeline: Make) -> None:
    with IngestReceiver(INGEST_KEY) as rx:
        rx.fault = (402, {"error": {"resource": "maxTracesPerMonth", "current": 10, "max": 10}}, {})
        tel, _ = pipeline(rx)
        allowed_round(tel)
        assert tel.flush(5.0) is False
        allowed_round(tel)
        assert tel.flush(5.0) is False
    assert len(rx.requests) == 1  # the second batch was not posted
    assert tel.stats()["traces_undelivered"] == 6


@pytest.mark.parametrize("status", [429, 503])
def test_transient_answers_are_retried(pipeline: Make, status: int) -> None:
    with IngestReceiver(INGEST_KEY) as rx:
        rx.script = [(status, {"error": {"message": "later"}}, {"Retry-After": "0"})]
        tel, _ = pipeline(rx)
        allowed_round(tel)
        assert tel.flush(10.0)
    assert len(rx.requests) == 2
    assert len(rx.records) == 3 and tel.stats()["traces_sent"] == 3


def test_large_batches_are_split(pipeline: Make) -> None:
    with IngestReceiver(INGEST_KEY) as rx:
        tel, _ = pipeline(rx)
        for _ in range(250):
            with tel.governed_span("invoke_agent ops", attributes=ROUND):
                pass
        assert tel.flush(10.0)
    assert rx.invalid == []
    assert len(rx.records) == 250
    sizes = [len(__import__("json").loads(r.raw)["traces"]) for r in rx.requests]
    assert max(sizes) <= 100 and sum(sizes) == 250


# -- bounded in time -----------------------------------------------------------------------


def test_flush_and_shutdown_bounded_when_execlave_never_answers(pipeline: Make) -> None:
    with IngestReceiver(INGEST_KEY) as rx:
        rx.fault = "hang"
        tel, _ = pipeline(rx, timeout=30.0)
        allowed_round(tel)
        t0 = time.monotonic()
        assert tel.flush(0.5) is False
        assert tel.shutdown(0.5) is False
        elapsed = time.monotonic() - t0
        assert rx.requests  # the exporter really connected and waits for an answer
    assert elapsed < 1.0 + SLACK
    assert tel.stats()["spans_dropped_export_failed"] == 3


def test_shutdown_ends_a_retry_wait(pipeline: Make) -> None:
    with IngestReceiver(INGEST_KEY) as rx:
        rx.fault = (503, {"error": {"message": "down"}}, {"Retry-After": "50"})
        tel, exporter = pipeline(rx, timeout=60.0)
        allowed_round(tel)
        assert tel.flush(0.5) is False
        t0 = time.monotonic()
        tel.shutdown(0.5)
        assert time.monotonic() - t0 < 0.5 + SLACK
    assert len(rx.requests) == 1  # waiting 50 s for the retry, not hammering
    assert exporter.stats()["traces_sent"] == 0


# -- the key -------------------------------------------------------------------------------


def test_key_is_never_shown_and_bad_keys_are_refused_without_echo() -> None:
    exporter = TraceIngestExporter(
        api_key=f"  {INGEST_KEY}\n", base_url="http://127.0.0.1:9", masker=mask_pii
    )
    assert INGEST_KEY not in repr(exporter) and INGEST_KEY not in str(vars(exporter))
    exporter.shutdown()
    bad = "exk_live_with space"
    with pytest.raises(ValueError, match="whitespace or control characters") as info:
        TraceIngestExporter(api_key=bad, base_url="http://127.0.0.1:9", masker=mask_pii)
    assert bad not in str(info.value)
    with pytest.raises(ValueError, match="base_url"):
        TraceIngestExporter(api_key=INGEST_KEY, base_url="ftp://example.com", masker=mask_pii)
