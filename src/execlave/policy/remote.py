"""Policies fetched from Execlave (``GET {base_url}/api/v1/policies``) with a last-known-good copy
on disk.

Pure Python plus httpx: nothing here imports OpenTelemetry or AutoGen. The API key travels only in
the ``Authorization`` header; it is never logged, never put in an exception message or a repr, and
never written to the cache file (which holds the policy documents only, mode 0600).

Policies whose ``policyType`` the SDK cannot evaluate locally (custom validators, expressions,
approvals, ...) do not invalidate the set: they are kept aside as *server-evaluated* policies, and
the connector asks Execlave to decide for the agents they apply to.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ..errors import ConfigIssue, ExeclaveError, PolicyConfigError
from .loader import parse_policy_document, policy_items
from .schema import POLICY_TYPES, Policy

__all__ = [
    "POLICIES_PATH",
    "ApiKeyRejectedError",
    "RemotePolicySet",
    "RemotePolicySource",
    "RemoteUnavailableError",
    "Secret",
    "ServerPolicy",
    "default_cache_dir",
    "split_policy_document",
]

POLICIES_PATH = "/api/v1/policies"
_log = logging.getLogger("execlave.cloud")
_CACHE_FORMAT = 1


class Secret:
    """Holds the API key; its repr and str never show it (so ``vars()`` / debuggers don't either)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__


class ApiKeyRejectedError(ExeclaveError):
    """Execlave answered 401/403 to the API key. Loud on purpose: never a silent fail-open."""


class RemoteUnavailableError(ExeclaveError):
    """Execlave could not be reached or answered something unusable (timeout, 5xx, 429, bad JSON)."""


@dataclass(frozen=True)
class ServerPolicy:
    """A policy of a type only Execlave can evaluate; its decisions come from the enforce endpoint."""

    id: str
    name: str
    policy_type: str
    enforcement_mode: str
    applies_to_agents: tuple[str, ...]
    is_active: bool

    def applies_to(self, agent_id: str) -> bool:
        return self.is_active and (not self.applies_to_agents or agent_id in self.applies_to_agents)


@dataclass(frozen=True)
class RemotePolicySet:
    """A validated policy set as served: local policies, server-evaluated ones, and its ETag."""

    policies: tuple[Policy, ...]
    server_policies: tuple[ServerPolicy, ...]
    document: tuple[Mapping[str, Any], ...]
    etag: str | None
    origin: str  # "server" | "cache"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/execlave``, else ``~/.cache/execlave`` (override with ``cache_dir=``)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "execlave"


def _server_policy(item: Mapping[str, Any], source: str, label: str) -> ServerPolicy | ConfigIssue:
    mode = item.get("enforcementMode", "block")
    agents = item.get("appliesToAgents") or []
    active = item.get("isActive", True)
    if mode not in ("block", "warn", "monitor"):
        return ConfigIssue(source, label, "enforcementMode", f"expected block, warn or monitor; got {mode!r}")
    if not isinstance(agents, list) or not all(isinstance(a, str) for a in agents):
        return ConfigIssue(source, label, "appliesToAgents", "expected a list of agent ids")
    if not isinstance(active, bool):
        return ConfigIssue(source, label, "isActive", "expected true or false")
    name = item.get("name")
    return ServerPolicy(
        id=label,
        name=name if isinstance(name, str) and name else label,
        policy_type=str(item["policyType"]),
        enforcement_mode=mode,
        applies_to_agents=tuple(agents),
        is_active=active,
    )


def split_policy_document(document: Any, source: str) -> tuple[list[Policy], list[ServerPolicy]]:
    """Validate a fetched document. Policies with a ``policyType`` the SDK does not know become
    :class:`ServerPolicy` entries (they still need a non-empty ``id`` and a valid mode); every
    other policy goes through :func:`~execlave.policy.loader.parse_policy_document`. Raises
    :class:`~execlave.errors.PolicyConfigError` listing every problem."""
    document = policy_items(document, source)
    local: list[Any] = []
    server: list[ServerPolicy] = []
    issues: list[ConfigIssue] = []
    ids: set[str] = set()
    for index, item in enumerate(document):
        policy_type = item.get("policyType") if isinstance(item, Mapping) else None
        if isinstance(policy_type, str) and policy_type and policy_type not in POLICY_TYPES:
            pid = item.get("id")
            if not isinstance(pid, str) or not pid:
                issues.append(ConfigIssue(source, f"#{index}", "id", "missing or empty"))
                continue
            if pid in ids:
                issues.append(ConfigIssue(source, pid, "id", "duplicate id"))
                continue
            ids.add(pid)
            parsed = _server_policy(item, source, pid)
            if isinstance(parsed, ConfigIssue):
                issues.append(parsed)
            else:
                server.append(parsed)
        else:
            if isinstance(item, Mapping) and isinstance(item.get("id"), str):
                if item["id"] in ids:
                    issues.append(ConfigIssue(source, item["id"], "id", "duplicate id"))
                    continue
                ids.add(item["id"])
            local.append(item)
    try:
        policies = parse_policy_document(local, source, allow_empty=True)  # server-only sets are fine
    except PolicyConfigError as exc:
        issues.extend(exc.issues)
        policies = []
    if issues:
        raise PolicyConfigError(issues)
    return policies, server


def _policy_list(document: Any) -> list[Mapping[str, Any]]:
    if isinstance(document, Mapping) and "policies" in document:
        document = document["policies"]
    return list(document or [])


class RemotePolicySource:
    """Fetches the policy set from Execlave and keeps the last good one on disk.

    Args:
        base_url: Execlave API base URL (no trailing slash needed).
        api_key: sent as ``Authorization: Bearer ...``; never stored anywhere else.
        http: the ``httpx.Client`` to use (the connector shares one with bounded timeouts).
        cache_dir: directory of the last-known-good file; ``None`` -> :func:`default_cache_dir`;
            ``False`` disables the disk cache.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        http: httpx.Client,
        cache_dir: str | os.PathLike[str] | bool | None = None,
    ) -> None:
        self._url = base_url.rstrip("/") + POLICIES_PATH
        self._key = Secret(api_key)
        self._http = http
        self._etag: str | None = None
        if cache_dir is False:
            self.cache_path: Path | None = None
        else:
            directory = default_cache_dir() if cache_dir in (None, True) else Path(cache_dir)  # type: ignore[arg-type]
            # The file name identifies the (server, key) pair by a one-way digest: two keys on one
            # machine never share a policy set, and the key itself is not recoverable from the name.
            digest = hashlib.sha256(f"{base_url.rstrip('/')}\0{api_key}".encode()).hexdigest()[:24]
            self.cache_path = directory / f"policies-{digest}.json"

    def __repr__(self) -> str:
        return f"RemotePolicySource(url={self._url!r}, api_key=<redacted>, cache_path={self.cache_path!s})"

    # -- server -------------------------------------------------------------------------------

    def fetch(self) -> RemotePolicySet | None:
        """GET the policy set. Returns ``None`` on 304 Not Modified. Raises
        :class:`ApiKeyRejectedError` (401/403), :class:`RemoteUnavailableError` (network, timeout,
        429, 5xx, unparseable body) or :class:`~execlave.errors.PolicyConfigError` (a set that
        fails validation; the caller keeps the previous set)."""
        headers = {"Authorization": f"Bearer {self._key.reveal()}", "Accept": "application/json"}
        if self._etag:
            headers["If-None-Match"] = self._etag
        try:
            response = self._http.get(self._url, headers=headers)
        except httpx.HTTPError as exc:
            raise RemoteUnavailableError(f"cannot reach {self._url}: {type(exc).__name__}") from None
        status = response.status_code
        if status == 304:
            return None
        if status in (401, 403):
            raise ApiKeyRejectedError(
                f"Execlave rejected the API key (HTTP {status} from {self._url}). Fix: check "
                "EXECLAVE_API_KEY / the api_key argument (create or rotate keys in the Execlave "
                "dashboard), and that base_url points at your Execlave deployment."
            )
        if status != 200:
            raise RemoteUnavailableError(f"{self._url} answered HTTP {status}")
        try:
            document = response.json()
        except ValueError:
            raise RemoteUnavailableError(f"{self._url} answered malformed JSON") from None
        policies, server = split_policy_document(document, self._url)
        etag = response.headers.get("ETag")
        self._etag = etag
        result = RemotePolicySet(
            tuple(policies), tuple(server), tuple(_policy_list(document)), etag, "server"
        )
        self._save(result)
        return result

    # -- disk cache ---------------------------------------------------------------------------

    def load_cache(self) -> RemotePolicySet | None:
        """The last good set, or ``None`` if there is none (or it is unreadable / invalid)."""
        if self.cache_path is None or not self.cache_path.is_file():
            return None
        try:
            data = json.loads(self.cache_path.read_text(encoding="utf-8"))
            if not isinstance(data, Mapping) or data.get("format") != _CACHE_FORMAT:
                raise ValueError("unknown cache format")
            policies, server = split_policy_document(data["policies"], str(self.cache_path))
        except (OSError, ValueError, KeyError, PolicyConfigError) as exc:
            _log.warning("ignoring unusable policy cache %s: %s", self.cache_path, type(exc).__name__)
            return None
        return RemotePolicySet(
            tuple(policies), tuple(server), tuple(_policy_list(data["policies"])), None, "cache"
        )

    def _save(self, result: RemotePolicySet) -> None:
        if self.cache_path is None:
            return
        payload = json.dumps({"format": _CACHE_FORMAT, "policies": list(result.document)})
        directory = self.cache_path.parent
        tmp: str | None = None
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=".policies-", dir=directory)  # created 0600
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(payload)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.cache_path)
            tmp = None
        except OSError as exc:
            _log.warning("cannot write policy cache in %s: %s", directory, type(exc).__name__)
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
