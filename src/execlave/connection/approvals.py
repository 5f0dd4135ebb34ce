"""Human approvals: a 202 from the enforce endpoint names an approval request; it is polled
(``GET /api/v1/approvals/{id}``) until decided or ``timeout``, and an approval is only trusted
once ``POST /api/v1/approvals/{id}/verify`` confirms it covers this exact action.

Sync waits block only the calling thread; async waits await. Never cached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from ..errors import (
    ApprovalTimeoutError,
    ApprovalVerificationError,
    CertificateMismatchError,
    ExeclaveAuthError,
    PolicyDeniedError,
)
from ._http import Api, unwrap

APPROVALS_PATH = "/api/v1/approvals"
_RETRY = frozenset({408, 429, 500, 502, 503, 504})


class Approvals:
    def __init__(self, api: Api, *, timeout: float = 300.0, poll_interval: float = 5.0) -> None:
        self._api = api
        self.timeout = timeout
        self.poll_interval = poll_interval

    def _path(self, approval_id: str) -> str:
        return f"{APPROVALS_PATH}/{quote(approval_id, safe='')}"

    def _status(self, approval_id: str, response: httpx.Response | None) -> str | None:
        """The approval's status, None to poll again; raises on a decision or a hard failure."""
        if response is None or response.status_code in _RETRY:
            return None
        if response.status_code in (401, 403):
            raise ExeclaveAuthError(
                f"Execlave rejected the API key while polling approval {approval_id!r} "
                f"(HTTP {response.status_code})",
                response.status_code,
            )
        if response.status_code != 200:
            raise ApprovalVerificationError(approval_id, f"polling answered HTTP {response.status_code}")
        try:
            data = unwrap(response.json())
        except ValueError:
            raise ApprovalVerificationError(approval_id, "polling answered malformed JSON") from None
        status = data.get("status") if isinstance(data, Mapping) else None
        if status == "denied":
            reason = data.get("decisionReason")
            raise PolicyDeniedError(approval_id, reason if isinstance(reason, str) else None)
        if status == "expired":
            raise ApprovalTimeoutError(approval_id)
        return "approved" if status == "approved" else None

    @staticmethod
    def _verified(approval_id: str, response: httpx.Response | Exception) -> dict[str, Any]:
        if isinstance(response, Exception):
            raise ApprovalVerificationError(approval_id, type(response).__name__)
        if response.status_code != 200:
            raise ApprovalVerificationError(approval_id, f"verify answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise ApprovalVerificationError(approval_id, "verify answered malformed JSON") from None
        # The answer and its {"data": ...} payload: every layer that says anything must say valid.
        layers = [body] if isinstance(body, Mapping) else []
        if layers and isinstance(body.get("data"), Mapping):
            layers.append(body["data"])
        said = [layer for layer in layers if "valid" in layer]
        if not said or any(not isinstance(layer["valid"], bool) for layer in said):
            raise ApprovalVerificationError(approval_id, "verify answered without a boolean 'valid'")
        refused = next((layer for layer in said if layer["valid"] is False), None)
        if refused is not None:
            reason = refused.get("reason")
            raise CertificateMismatchError(approval_id, reason if isinstance(reason, str) else None)
        data = said[-1]
        out: dict[str, Any] = {"allowed": True, "approvalRequestId": approval_id}
        if "certificate" in data:
            out["certificate"] = data["certificate"]
        return out

    def wait(self, approval_id: str, action_context: Mapping[str, Any]) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                response: httpx.Response | None = self._api.request("GET", self._path(approval_id))
            except httpx.HTTPError:
                response = None
            if self._status(approval_id, response) == "approved":
                break
            if time.monotonic() + self.poll_interval > deadline:
                raise ApprovalTimeoutError(approval_id)
            time.sleep(self.poll_interval)
        try:
            verify: httpx.Response | Exception = self._api.request(
                "POST", self._path(approval_id) + "/verify", json={"actionContext": dict(action_context)}
            )
        except httpx.HTTPError as exc:
            verify = exc
        return self._verified(approval_id, verify)

    async def await_(self, approval_id: str, action_context: Mapping[str, Any]) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                response: httpx.Response | None = await self._api.arequest("GET", self._path(approval_id))
            except httpx.HTTPError:
                response = None
            if self._status(approval_id, response) == "approved":
                break
            if time.monotonic() + self.poll_interval > deadline:
                raise ApprovalTimeoutError(approval_id)
            await asyncio.sleep(self.poll_interval)
        try:
            verify: httpx.Response | Exception = await self._api.arequest(
                "POST", self._path(approval_id) + "/verify", json={"actionContext": dict(action_context)}
            )
        except httpx.HTTPError as exc:
            verify = exc
        return self._verified(approval_id, verify)
