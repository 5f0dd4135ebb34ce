"""`Execlave`: the one client a process creates. It wires the policy engine to the telemetry
pipeline; framework adapters (``execlave.integrations``) are thin layers over it."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .cloud import CloudConnector, OutageMode
from .connection.ingest import execlave_span_exporter
from .errors import ExeclaveError
from .policy import CheckRequest, Decision, PolicyEngine, ToolCall, mask_pii
from .policy.loader import PolicySource, resolve_policy_source
from .policy.remote import Secret
from .telemetry import GovernanceSpanProcessor, Telemetry, TelemetryConfig, resolve_capture_content
from .telemetry.bounds import SecretRedactingMasker

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

__all__ = ["DEFAULT_BASE_URL", "Execlave", "PolicySource", "validate_agent_id"]

DEFAULT_BASE_URL = "https://api.execlave.com"

_AGENT_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_AGENT_ID_MAX = 128


def validate_agent_id(agent_id: object) -> str:
    """Return ``agent_id`` if it is lowercase kebab-case (``ops-assistant``), else raise ValueError."""
    if isinstance(agent_id, str) and len(agent_id) <= _AGENT_ID_MAX and _AGENT_ID.fullmatch(agent_id):
        return agent_id
    hint = ""
    if isinstance(agent_id, str):
        words = re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", agent_id)
        suggestion = "-".join(w.lower() for w in words)[:_AGENT_ID_MAX].strip("-")
        if suggestion and _AGENT_ID.fullmatch(suggestion):
            hint = f" (did you mean {suggestion!r}?)"
    raise ValueError(
        f"agent_id must be lowercase kebab-case of at most {_AGENT_ID_MAX} characters, "
        f"e.g. 'ops-assistant'; got {agent_id!r}{hint}"
    )


def _tool_calls(tools: Sequence[str | Mapping[str, Any]] | None) -> tuple[ToolCall, ...]:
    calls: list[ToolCall] = []
    for i, tool in enumerate(tools or ()):
        if isinstance(tool, str):
            calls.append(ToolCall(tool))
        elif isinstance(tool, Mapping) and isinstance(tool.get("name"), str):
            calls.append(ToolCall(tool["name"], tool.get("arguments"), tool.get("id")))
        else:
            raise TypeError(
                f"tools[{i}] must be a tool name or a mapping with a 'name' key, "
                f"e.g. {{'name': 'search_docs', 'arguments': {{'q': 'x'}}}}; got {tool!r}"
            )
    return tuple(calls)


class Execlave:
    """One per process: holds the compiled policies and the telemetry pipeline.

    Args:
        api_key: Execlave API key; defaults to ``EXECLAVE_API_KEY``. With a key, execlave's spans
            (and only those) are also sent to Execlave's trace-ingest API
            (``{base_url}/api/v1/traces/ingest``). Never logged or shown.
        policies: a policy file, a list of policies or a ``{"policies": [...]}`` document; an empty
            set is an error unless meant (``execlave.policy.NO_POLICIES``). Defaults to
            ``EXECLAVE_POLICY_FILE``, else the bundled baseline (injection patterns and PII in
            ``monitor`` mode: records, never blocks).
        base_url: Execlave API base URL; defaults to ``EXECLAVE_BASE_URL`` or ``https://api.execlave.com``.
        environment: deployment environment recorded on spans; defaults to ``EXECLAVE_ENVIRONMENT``
            or ``"production"``.
        service_name: ``service.name`` when execlave owns the tracer provider (else ``OTEL_SERVICE_NAME``).
        tracer_provider: the provider to create spans with. Defaults to the global one if the
            application set one; otherwise execlave creates its own (without installing it globally).
        otlp_endpoint: a collector endpoint (e.g. ``http://localhost:4318``); defaults to the
            standard ``OTEL_EXPORTER_OTLP_*`` variables. Used only when execlave owns the provider.
        console: print a readable span tree of each finished trace to stdout.
        capture_content: record (PII-masked) message content on spans. Defaults to
            ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``, else off.
        remote_policies: enforce the policies managed in Execlave (fetched from the server,
            refreshed in the background, with the per-agent kill switch). Default ``None`` = on
            when an API key is set and neither ``policies=`` nor ``EXECLAVE_POLICY_FILE`` is given.
        enforcement_on_outage: ``"fail_closed"`` (default): checks raise EnforcementUnavailableError
            while no policy set was ever loaded (no server, no disk cache); ``"fail_open"``: they
            pass, and every pass is counted as a bypass in :meth:`stats`.
        policy_refresh_interval: seconds between background refreshes of policies and agent status.
        cache_dir: where the last-known-good policy set is kept (mode 0600, policies only); default
            ``$XDG_CACHE_HOME/execlave``, else ``~/.cache/execlave``;
            ``False`` disables it.
        request_timeout: bound, in seconds, on every request to Execlave's API.
        execlave_otlp_endpoint: send execlave's spans to this Execlave OTLP/HTTP endpoint instead
            of the trace-ingest API; defaults to ``EXECLAVE_OTLP_ENDPOINT``, else unused.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        policies: PolicySource | None = None,
        base_url: str | None = None,
        environment: str | None = None,
        service_name: str | None = None,
        tracer_provider: TracerProvider | None = None,
        otlp_endpoint: str | None = None,
        console: bool = False,
        capture_content: bool | None = None,
        remote_policies: bool | None = None,
        enforcement_on_outage: OutageMode = "fail_closed",
        policy_refresh_interval: float = 30.0,
        cache_dir: str | os.PathLike[str] | bool | None = None,
        request_timeout: float = 5.0,
        execlave_otlp_endpoint: str | None = None,
    ) -> None:
        key = api_key or os.environ.get("EXECLAVE_API_KEY") or None
        # Held redacted, so vars(client), debuggers and tracebacks with locals never show it.
        self._api_key = Secret(key) if key else None
        self.base_url = (base_url or os.environ.get("EXECLAVE_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.environment = environment or os.environ.get("EXECLAVE_ENVIRONMENT") or "production"
        if remote_policies is None:  # auto: the dashboard's policies when a key is set and none are given
            remote_policies = bool(key and policies is None and not os.environ.get("EXECLAVE_POLICY_FILE"))
        if remote_policies and not key:
            raise ValueError("remote_policies=True needs an API key (api_key= or EXECLAVE_API_KEY)")
        self._engine = PolicyEngine(() if remote_policies else resolve_policy_source(policies))
        self._cloud: CloudConnector | None = None
        if key:
            self._cloud = CloudConnector(
                self._engine,
                api_key=key,
                base_url=self.base_url,
                environment=self.environment,
                manage_policies=remote_policies,
                enforcement_on_outage=enforcement_on_outage,
                policy_refresh_interval=policy_refresh_interval,
                cache_dir=cache_dir,
                request_timeout=request_timeout,
            )
            self._cloud.start()  # raises ApiKeyRejectedError (an ExeclaveError) on HTTP 401/403
        capture = resolve_capture_content(capture_content)
        self._telemetry = Telemetry(
            TelemetryConfig(
                service_name=service_name,
                environment=self.environment,
                execlave_exporter=(
                    execlave_span_exporter(
                        key,
                        base_url=self.base_url,
                        environment=self.environment,
                        capture_content=capture,
                        masker=mask_pii,
                        timeout=request_timeout,
                        otlp_endpoint=execlave_otlp_endpoint,
                    )
                    if key
                    else None
                ),
                otlp_endpoint=otlp_endpoint,
                console=console,
                capture_content=capture,
                tracer_provider=tracer_provider,
            ),
            masker=SecretRedactingMasker(mask_pii, key) if key else mask_pii,  # key in no recorded text
        )

    def __repr__(self) -> str:
        key = "set" if self._api_key else "unset"
        return (
            f"Execlave(base_url={self.base_url!r}, environment={self.environment!r}, api_key={key}, "
            f"policies={len(self._engine.policies)}, policy_set_version={self._engine.version})"
        )

    # -- enforcement -------------------------------------------------------------------------

    def _check(self, request: CheckRequest) -> Decision:
        """The single decision point every adapter and :meth:`enforce_policy` go through."""
        if self._cloud is not None and self._cloud.manages_policies:
            return self._cloud.check(request)
        return self._engine.evaluate(request)

    @property
    def _decides_remotely(self) -> bool:
        """Whether a check may wait on Execlave's API (server-evaluated policies); async adapters
        then await :meth:`_acheck` instead of calling :meth:`_check`."""
        return self._cloud is not None and self._cloud.manages_policies

    async def _acheck(self, request: CheckRequest) -> Decision:
        """:meth:`_check` for async adapters: server-side decisions use httpx.AsyncClient."""
        if self._cloud is not None and self._cloud.manages_policies:
            return await self._cloud.acheck(request)
        return self._engine.evaluate(request)

    def register_agent(
        self, agent_id: str, name: str | None = None, description: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Register the agent with Execlave (``POST /api/v1/agents``); needs an API key."""
        return self._require_cloud().register_agent(validate_agent_id(agent_id), name, description, **extra)

    async def aregister_agent(
        self, agent_id: str, name: str | None = None, description: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        return await self._require_cloud().aregister_agent(
            validate_agent_id(agent_id), name, description, **extra
        )

    def _require_cloud(self) -> CloudConnector:
        if self._cloud is None:
            raise ExeclaveError("register_agent needs an Execlave API key (api_key= or EXECLAVE_API_KEY)")
        return self._cloud

    def enforce_policy(
        self,
        agent_id: str,
        input: str | None,
        *,
        tools: Sequence[str | Mapping[str, Any]] | None = None,
        metadata: Mapping[str, Any] | None = None,
        environment: str | None = None,
    ) -> dict[str, Any]:
        """Check an input (and optionally the tools about to be called) against the policies.

        Returns ``{"allowed": True, "warnings": [...]}`` (warn-mode violations) or raises
        :class:`~execlave.errors.PolicyBlockedError` / :class:`~execlave.errors.AgentPausedError`.
        Don't call this next to an instrumented agent: the wrapper already runs the same checks.
        """
        validate_agent_id(agent_id)
        request = CheckRequest(
            agent_id=agent_id,
            input=input,
            tool_calls=_tool_calls(tools),
            environment=environment or self.environment,
            metadata=metadata,
            count_request=True,
        )
        attributes = {"gen_ai.agent.id": agent_id, "execlave.operation": "enforce_policy"}
        with self._telemetry.governed_span(
            f"enforce_policy {agent_id}", attributes=attributes, check=lambda: self._check(request)
        ) as governed:
            return {"allowed": True, "warnings": governed.decision.warnings}

    def pause_agent(self, agent_id: str, reason: str | None = None) -> None:
        """Kill switch: every later check for this agent (and only this one) raises AgentPausedError."""
        self._engine.pause(validate_agent_id(agent_id), reason)

    def resume_agent(self, agent_id: str) -> None:
        self._engine.resume(validate_agent_id(agent_id))

    def reload_policies(self, policies: PolicySource) -> int:
        """Compile a new policy set and swap it in atomically; returns its version.
        On an invalid set, raises PolicyConfigError and the current set stays in force."""
        return self._engine.reload(resolve_policy_source(policies))

    def span_processor(self, *, raise_on_block: bool = False) -> GovernanceSpanProcessor:
        """A SpanProcessor that governs other instrumentations' tool spans (see its docs for limits)."""
        return GovernanceSpanProcessor(self._check, raise_on_block=raise_on_block)

    # -- telemetry lifecycle -----------------------------------------------------------------

    def flush(self, timeout: float = 5.0) -> bool:
        """Export pending spans. Returns within ``timeout`` (+ a small margin) even if the
        endpoint is down; ``False`` if not everything was exported in time."""
        return self._telemetry.flush(timeout)

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Flush and stop exporting; bounded like :meth:`flush`. Enforcement keeps working."""
        if self._cloud is not None:
            self._cloud.close(timeout=min(timeout, 2.0))
        return self._telemetry.shutdown(timeout)

    def stats(self) -> dict[str, int]:
        """Counters: spans exported and dropped (queue full, failed export), policy set version."""
        cloud = self._cloud.stats() if self._cloud is not None else {}
        return {**self._telemetry.stats(), **cloud, "policy_set_version": self._engine.version}

    def __enter__(self) -> Execlave:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()
