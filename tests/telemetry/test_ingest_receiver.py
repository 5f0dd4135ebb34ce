"""The strict trace-ingest receiver (support/ingest_receiver.py) refuses what the platform refuses."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from support.ingest_receiver import INGEST, IngestReceiver

KEY = "exe_test_receiver_key_0001"


def _record(**extra: Any) -> dict[str, Any]:
    return {"traceId": "tr_0123456789abcdef", "timestamp": "2026-01-01T00:00:00.000Z", "durationMs": 3,
            "status": "success", **extra}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"traces": [_record()]}, 202),
        ({"traces": [_record(spanType="tool", parentTraceId="tr_1", metadata={"a": 1})]}, 202),
        ({"traces": [_record(unknownField=1)]}, 400),
        ({"traces": [_record(status="blocked")]}, 400),
        ({"traces": [_record(status="error")]}, 400),
        ({"traces": [_record(status="error", errorType="E", errorMessage="m")]}, 202),
        ({"traces": [{k: v for k, v in _record().items() if k != "durationMs"}]}, 400),
        ({"traces": []}, 400),
        ({"traces": [_record()] * 101}, 400),
        ({"traces": [_record()], "extra": True}, 400),
        ({"traces": [_record(agentId=None)]}, 400),
    ],
)
def test_receiver_validates_like_the_platform(body: Any, status: int) -> None:
    with IngestReceiver(KEY) as rx:
        r = httpx.post(rx.endpoint + INGEST, json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == status, r.text


def test_receiver_auth_routes_and_per_trace_errors() -> None:
    with IngestReceiver(KEY) as rx:
        rx.reject = lambda rec: (
            ("OUTCOME_EVIDENCE_REQUIRED", "no evidence") if rec["traceId"] == "tr_b" else None
        )
        auth = {"Authorization": f"Bearer {KEY}"}
        assert httpx.post(rx.endpoint + INGEST, json={"traces": [_record()]}).status_code == 401
        assert httpx.post(rx.endpoint + "/v1/traces", content=b"x", headers=auth).status_code == 404
        r = httpx.post(
            rx.endpoint + INGEST,
            json={"traces": [_record(traceId="tr_a"), _record(traceId="tr_b")]},
            headers=auth,
        )
    assert r.status_code == 202
    assert r.json() == {
        "accepted": 1,
        "failed": 1,
        "errors": [{"traceId": "tr_b", "code": "OUTCOME_EVIDENCE_REQUIRED", "error": "no evidence"}],
    }
    assert [rec["traceId"] for rec in rx.records] == ["tr_a"]
