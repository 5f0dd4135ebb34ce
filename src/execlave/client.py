"""`Execlave`: the one client a process creates. It wires the local policy engine, the connection to
Execlave (with an API key) and the telemetry pipeline; its options are the table in ``_config.py``.
Framework adapters (``execlave.integrations``) are thin layers over it."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._config import BY_NAME, DEFAULT_BASE_URL, DEFAULT_ENVIRONMENT, ConnectionOptions, resolve
from ._ids import validate_agent_id
from .adapter import AgentIdentity, Check
from .connection import (
    OUTAGE_MODES,
    Connection,
    OutageMode,
    Secret,
    normalise_base_url,
    parse_api_key,
    redact_url,
    validate_timings,
)
from .connection.ingest import execlave_span_exporter
from .errors import ExeclaveError, PolicyBlockedError
from .policy import CheckRequest, Decision, PolicyEngine, PolicySource, ToolCall, ToolOutput
from .policy.loader import resolve_policy_source
from .policy.pii import mask_pii
from .policy.types import ALLOW, Violation
from .telemetry import GovernanceSpanProcessor, Telemetry, TelemetryConfig, names, resolve_capture_content
from .telemetry.bounds import SecretRedactingMasker
from .telemetry.core import UnrecordedSpanContext

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Tracer, TracerProvider
    from opentelemetry.util.types import AttributeValue

    from .telemetry import GovernedSpan


_log = logging.getLogger("execlave")
_announced = threading.Event()


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


def _tool_outputs(outputs: Sequence[Mapping[str, Any] | ToolOutput] | None) -> tuple[ToolOutput, ...]:
    found: list[ToolOutput] = []
    for i, item in enumerate(outputs or ()):
        if isinstance(item, ToolOutput):
            found.append(item)
        elif isinstance(item, Mapping) and "output" in item:
            name = item.get("name")
            output = item["output"]
            found.append(
                ToolOutput(
                    output if isinstance(output, str) else str(output),
                    name if isinstance(name, str) else None,
                )
            )
        else:
            raise TypeError(
                f"tool_outputs[{i}] must be a mapping with an 'output' key, "
                f"e.g. {{'name': 'search_docs', 'output': '...'}}; got {type(item).__name__}"
            )
    return tuple(found)


def _not_enforced() -> Decision:
    """The check of a trace-only agent: nothing is evaluated or sent."""
    return ALLOW


def _spans_destination(tracer_provider: object, otlp_endpoint: str | None, console: bool) -> str:
    if tracer_provider is not None:
        return "the tracer provider passed as tracer_provider="
    places = []
    variables = BY_NAME["otlp_endpoint"].env
    endpoint = otlp_endpoint or next((os.environ[v] for v in variables if os.environ.get(v)), None)
    if endpoint:
        places.append(f"OTLP at {redact_url(endpoint)}")
    if console:
        places.append("the console")
    if not places:
        return "the application's global tracer provider if it set one, else nowhere"
    return " and ".join(places)


class Execlave:
    """One per process: the local policy layer, the connection to Execlave and the telemetry pipeline.

    Every option is a row of the table in ``execlave/_config.py`` (argument, environment variable,
    default, type), resolved in one order: the argument, else the variable, else the default.
    ``tests/core/test_config.py`` checks this signature and these entries against it.

    Args:
        api_key: Execlave API key; defaults to ``EXECLAVE_API_KEY``. Surrounding whitespace is
            stripped. With a key, every check that local policies allow is also decided by
            Execlave (``POST /api/v1/policies/enforce``). Sent only as ``Authorization: Bearer``
            to ``base_url``; never logged or shown. With a key, execlave's spans (and only those) are
            also sent to Execlave's trace-ingest API (``{base_url}/api/v1/traces/ingest``).
        policies: a local policy file, a list of policies or a ``{"policies": [...]}`` document,
            run in-process before Execlave is asked (a local block never reaches the server); an
            empty set is an error unless meant (``execlave.policy.NO_POLICIES``). Defaults to
            ``EXECLAVE_POLICY_FILE``, else the bundled baseline (injection patterns and PII in
            ``monitor`` mode: records, never blocks).
        base_url: Execlave API base URL; defaults to ``EXECLAVE_BASE_URL`` or ``https://api.execlave.com``.
        environment: deployment environment sent with checks and recorded on spans; defaults to
            ``EXECLAVE_ENVIRONMENT`` or ``"production"``.
        service_name: ``service.name`` when execlave owns the tracer provider; defaults to
            ``OTEL_SERVICE_NAME``, else ``execlave-app``.
        tracer_provider: the provider to create spans with. Defaults to the global one if the
            application set one; otherwise execlave creates its own (without installing it globally).
        meter_provider: the ``MeterProvider`` for execlave's metrics (decisions, blocked tool calls,
            round and tool durations, dropped spans, bypasses). Defaults to the global one; else,
            when execlave owns the tracing pipeline and sends to a collector, its own (exported
            there over OTLP with the traces); else metrics are no-ops.
        otlp_endpoint: a collector endpoint (e.g. ``http://localhost:4318``); defaults to
            ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, else ``OTEL_EXPORTER_OTLP_ENDPOINT``. Used only
            when execlave owns the provider.
        console: print a readable span tree of each finished trace to stdout; default off.
        capture_content: record (PII-masked) message content on spans. Defaults to
            ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``, else off.
        enforcement_on_outage: what a check does when Execlave cannot decide (network error,
            timeout, HTTP 429 or 5xx, circuit open). ``"fail_open"`` (default, as the published
            client): the check passes, the pass is recorded on the span and reported to
            Execlave's audit trail; ``"fail_closed"``: the round stops with EnforcementUnavailableError.
            An answer that is not a decision (a redirect, 400, 404, 413, 422, a 200 without a boolean
            ``allowed``) is no outage: it stops the round in either mode (a wrong ``base_url``).
            No environment variable: enforcement is set in code.
        plan_limit_behavior: the same choice for HTTP 402 (plan limit reached); default ``"fail_open"``.
        request_timeout: bound, in seconds, on every request to Execlave's API (default 5).
        decision_cache_ttl: seconds an allow answer is reused for an identical request
            (default 60, as the published client); ``0`` disables the cache.
        approval_timeout: seconds a round waits for a human approval (default 300).
        approval_poll_interval: seconds between approval polls (default 5).
        status_poll_interval: seconds between kill-switch status polls of known agents (default 15).
        heartbeat_interval: seconds between agent heartbeats (default 600).
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
        meter_provider: MeterProvider | None = None,
        otlp_endpoint: str | None = None,
        console: bool = False,
        capture_content: bool | None = None,
        enforcement_on_outage: OutageMode = "fail_open",
        plan_limit_behavior: OutageMode = "fail_open",
        request_timeout: float = 5.0,
        decision_cache_ttl: float = 60.0,
        approval_timeout: float = 300.0,
        approval_poll_interval: float = 5.0,
        status_poll_interval: float = 15.0,
        heartbeat_interval: float = 600.0,
        execlave_otlp_endpoint: str | None = None,
    ) -> None:
        # Set first, so repr() works on a half-built client; the key is held redacted from here on.
        self._api_key: Secret | None = None
        self._connection: Connection | None = None
        self.base_url = DEFAULT_BASE_URL
        self.environment = DEFAULT_ENVIRONMENT
        self._api_key, problem = parse_api_key(resolve("api_key", api_key))
        del api_key  # from here on the key exists only redacted (tracebacks with locals show frames)
        if problem is not None:
            raise ValueError(problem)
        for name, mode in (
            ("enforcement_on_outage", enforcement_on_outage),
            ("plan_limit_behavior", plan_limit_behavior),
        ):
            if mode not in OUTAGE_MODES:
                raise ValueError(f"{name} must be 'fail_open' or 'fail_closed'; got {mode!r}")
        options = ConnectionOptions(
            base_url=normalise_base_url(str(resolve("base_url", base_url))),
            environment=str(resolve("environment", environment)),
            enforcement_on_outage=enforcement_on_outage,
            plan_limit_behavior=plan_limit_behavior,
            request_timeout=request_timeout,
            decision_cache_ttl=decision_cache_ttl,
            approval_timeout=approval_timeout,
            approval_poll_interval=approval_poll_interval,
            status_poll_interval=status_poll_interval,
            heartbeat_interval=heartbeat_interval,
        )
        validate_timings(**options.timings())
        self.base_url = options.base_url
        self.environment = options.environment
        self.enforcement_on_outage: OutageMode = enforcement_on_outage
        self._engine = PolicyEngine(resolve_policy_source(policies))
        # Everything that can fail is built before any thread starts; a failure closes what was built.
        execlave_exporter = None
        try:
            if self._api_key is not None:
                self._connection = Connection(key=self._api_key, **vars(options))
            capture = resolve_capture_content(capture_content)
            if self._api_key is not None:
                execlave_exporter = execlave_span_exporter(
                    self._api_key.reveal(),
                    base_url=self.base_url,
                    environment=self.environment,
                    capture_content=capture,
                    masker=mask_pii,
                    timeout=request_timeout,
                    otlp_endpoint=execlave_otlp_endpoint,
                )
            self._telemetry = Telemetry(
                TelemetryConfig(
                    service_name=service_name,
                    environment=self.environment,
                    execlave_exporter=execlave_exporter,
                    otlp_endpoint=otlp_endpoint,
                    console=console,
                    capture_content=capture,
                    tracer_provider=tracer_provider,
                    meter_provider=meter_provider,
                ),
                # The key is replaced in every text telemetry records (exceptions, names, content).
                masker=(
                    SecretRedactingMasker(mask_pii, self._api_key.reveal())
                    if self._api_key is not None
                    else mask_pii
                ),
            )
        except BaseException:
            if self._connection is not None:
                self._connection.api.close()
            if execlave_exporter is not None:
                execlave_exporter.shutdown()
            raise
        if self._connection is not None:
            self._connection.start()
        elif policies is None and not os.environ.get("EXECLAVE_POLICY_FILE") and not _announced.is_set():
            _announced.set()
            _log.info(
                "execlave: no API key and no policy file: the bundled baseline is in force in monitor mode "
                "(violations are recorded, nothing is blocked); spans go to %s",
                _spans_destination(tracer_provider, otlp_endpoint, console),
            )

    def __repr__(self) -> str:
        try:
            key = "set" if getattr(self, "_api_key", None) else "unset"
            engine = getattr(self, "_engine", None)
            policies = len(engine.policies) if engine is not None else 0
            version = engine.version if engine is not None else 0
            return (
                f"Execlave(base_url={redact_url(str(getattr(self, 'base_url', '?')))!r}, "
                f"environment={getattr(self, 'environment', '?')!r}, api_key={key}, "
                f"policies={policies}, policy_set_version={version})"
            )
        except Exception:
            return "Execlave(<unavailable>)"

    # -- enforcement -------------------------------------------------------------------------

    # -- the adapter interface (docs/adapters.md) ---------------------------------------------

    def decide(self, request: CheckRequest, history: Sequence[Mapping[str, Any]] | None = None) -> Decision:
        """Decide ``request``: local policies first (a local block never reaches the server), then
        Execlave when a key is set. The single decision point of every adapter, of
        :meth:`enforce_policy` and of :meth:`span_processor`. Never raises for a block (the
        :class:`~execlave.policy.Decision` says ``blocked``); raises an
        :class:`~execlave.errors.EnforcementHaltError` when Execlave stops the agent (paused,
        denied, approval timeout, outage in ``fail_closed`` mode). Blocks the calling thread while
        Execlave answers: async code uses :meth:`adecide`."""
        local = self._engine.evaluate(request)
        if self._connection is None or local.blocked:
            return local
        return Decision.merge([local, self._connection.check(request, history)])

    async def adecide(
        self, request: CheckRequest, history: Sequence[Mapping[str, Any]] | None = None
    ) -> Decision:
        """:meth:`decide` for async code: Execlave's answer is awaited (an ``httpx.AsyncClient``),
        so the event loop never waits on the network; local policies run in-process."""
        local = self._engine.evaluate(request)
        if local.blocked or self._connection is None:
            return local
        return Decision.merge([local, await self._connection.acheck(request, history)])

    @property
    def decides_in_process(self) -> bool:
        """True when every decision is made in-process (no API key): nothing is ever awaited, so an
        async adapter may use :meth:`prepare_check` / :meth:`check_requested` directly instead of
        :meth:`aprepare_check` / :meth:`acheck_requested` (the same checks, without coroutines)."""
        return self._connection is None

    def prepare_check(self, build: Callable[[], CheckRequest]) -> Check:
        """A check for :meth:`round_span` / :meth:`tool_span`: ``build()`` and :meth:`decide` run
        inside the span, so a failure in either (a bug reading the framework's messages, say)
        fails closed and is recorded like any error on execlave's path."""
        decide = self.decide
        return lambda: decide(build())

    async def aprepare_check(self, build: Callable[[], CheckRequest]) -> Check:
        """:meth:`prepare_check` for async code: when the decision may wait on Execlave it is awaited
        now (:meth:`adecide`) and the returned check replays it, or re-raises its failure, inside
        the span; in-process decisions are made lazily, as :meth:`prepare_check` does."""
        if self._connection is None:
            return self.prepare_check(build)
        try:
            decision = await self.adecide(build())
        except Exception as exc:
            failure = exc

            def replay_failure() -> Decision:
                raise failure

            return replay_failure
        return lambda: decision

    def check_request(
        self,
        agent: AgentIdentity,
        *,
        input: str | None = None,
        tool_calls: tuple[ToolCall, ...] = (),
        tool_outputs: tuple[ToolOutput, ...] = (),
        count_request: bool = False,
    ) -> CheckRequest:
        """A :class:`~execlave.policy.CheckRequest` for ``agent`` in this client's environment:
        ``input=``, ``tool_calls=``, ``tool_outputs=``, ``count_request=`` (once per round)."""
        return CheckRequest(
            agent.agent_id, input, tool_calls, tool_outputs, self.environment, agent.metadata, count_request
        )

    def round_span(
        self, agent: AgentIdentity, *, check: Check | None = None, kind: str | None = None
    ) -> AbstractContextManager[GovernedSpan]:
        """An ``invoke_agent {agent}`` span around one round (a reply, a turn) of ``agent``.

        ``check`` runs first, inside the span; a block raises
        :class:`~execlave.errors.PolicyBlockedError` from the ``with`` statement after the decision
        is recorded, and any other failure of the check fails closed. ``kind`` marks a round that is
        no reply (``execlave.round.kind``, e.g. ``"summary"``). The yielded handle's
        ``check(another)`` decides more within the round (a block raises there), ``decision`` is
        the round's decision so far, ``record_content(key, text)`` records PII-masked content when
        capture is on."""
        attributes = agent.round_attributes
        if kind is not None:
            attributes = {**attributes, names.ROUND_KIND: kind}
        telemetry = self._telemetry
        if telemetry.never_records:  # = governed_span(...) there, one frame less per round
            return UnrecordedSpanContext(telemetry, attributes, check if agent.enforced else None, True)
        return telemetry.governed_span(
            agent.round_span_name, attributes=attributes, check=check if agent.enforced else None
        )

    def tool_span(
        self,
        agent: AgentIdentity,
        call: ToolCall,
        *,
        check: Check,
        requested: bool = False,
        handoff: bool = False,
    ) -> AbstractContextManager[GovernedSpan]:
        """A span for one tool call of ``agent``, the child of the span that is current.

        ``requested=False``: ``execute_tool {tool}`` around a real execution; ``check`` (the call,
        with the arguments the tool will receive) runs first and a block raises
        :class:`~execlave.errors.PolicyBlockedError` before the tool runs. ``requested=True``:
        ``check_tool {tool}`` for a call a model asked for, checked before any call runs; a block
        is recorded (ERROR status) but not raised, so that every requested call is checked and the
        adapter raises once (``governed.decision.blocked`` says so). ``handoff`` marks a call that
        hands the conversation to another agent."""
        attributes: dict[str, AttributeValue]
        if requested:
            attributes = {names.EXECLAVE_OPERATION: names.OP_CHECK_TOOL, names.TOOL_PHASE: "requested"}
        else:
            attributes = {names.GEN_AI_OPERATION_NAME: names.OP_EXECUTE_TOOL}
        attributes[names.GEN_AI_TOOL_NAME] = call.name
        attributes.update(agent.attributes)
        if call.call_id is not None:
            attributes[names.GEN_AI_TOOL_CALL_ID] = call.call_id
        if handoff:
            attributes[names.TOOL_HANDOFF] = True
        telemetry = self._telemetry
        if telemetry.never_records:  # = governed_span(...) there: no span name, one frame less
            return UnrecordedSpanContext(
                telemetry, attributes, check if agent.enforced else None, not requested
            )
        operation = names.OP_CHECK_TOOL if requested else names.OP_EXECUTE_TOOL
        return telemetry.governed_span(
            names.span_name(operation, call.name),
            attributes=attributes,
            check=check if agent.enforced else None,  # trace only: no check, no decision recorded
            raise_on_block=not requested,
            per_call=requested,  # past the round's span budget, allowed calls are counted, not spanned
        )

    @property
    def tracer(self) -> Tracer:
        """The tracer execlave's own spans are made with (scope ``execlave``), for an adapter's
        spans that decide nothing (a conversation around several rounds, say)."""
        return self._telemetry.tracer

    def check_requested(
        self,
        agent: AgentIdentity,
        calls: Iterable[ToolCall],
        *,
        handoff: Callable[[ToolCall], bool] | None = None,
    ) -> None:
        """Check every tool call a model just asked for, before any of them runs: one
        ``check_tool {tool}`` span each (see :meth:`tool_span`; ``handoff`` tells which calls hand
        the conversation over), then one :class:`~execlave.errors.PolicyBlockedError` with every
        blocking violation, if any call was blocked."""
        if not agent.enforced:
            self._check_requested(agent, [(call, _not_enforced) for call in calls], handoff)
            return
        checks = [(call, self._tool_check(agent, call)) for call in calls]
        self._check_requested(agent, checks, handoff)

    async def acheck_requested(
        self,
        agent: AgentIdentity,
        calls: Iterable[ToolCall],
        *,
        handoff: Callable[[ToolCall], bool] | None = None,
    ) -> None:
        """:meth:`check_requested` for async code: Execlave's answers are awaited."""
        if self._connection is None:  # nothing to wait on: decided in-process inside each span
            self.check_requested(agent, calls, handoff=handoff)
            return
        if not agent.enforced:
            self._check_requested(agent, [(call, _not_enforced) for call in calls], handoff)
            return
        checks = [(call, await self.aprepare_check(self._tool_request(agent, call))) for call in calls]
        self._check_requested(agent, checks, handoff)

    def _tool_request(self, agent: AgentIdentity, *calls: ToolCall) -> Callable[[], CheckRequest]:
        return lambda: self.check_request(agent, tool_calls=calls)

    def _tool_check(self, agent: AgentIdentity, call: ToolCall) -> Check:
        """:meth:`prepare_check` of one requested call (built and decided inside its span)."""
        environment, decide, agent_id, metadata = (
            self.environment,
            self.decide,
            agent.agent_id,
            agent.metadata,
        )
        return lambda: decide(CheckRequest(agent_id, None, (call,), (), environment, metadata))

    def _check_requested(
        self,
        agent: AgentIdentity,
        checks: Sequence[tuple[ToolCall, Check]],
        handoff: Callable[[ToolCall], bool] | None,
    ) -> None:
        blocking: list[Violation] = []
        for call, check in checks:
            marked = handoff is not None and handoff(call)
            with self.tool_span(agent, call, check=check, requested=True, handoff=marked) as governed:
                if governed.decision.blocked:
                    blocking.extend(governed.decision.blocking_violations)
                    with contextlib.suppress(Exception):  # telemetry faults never break the agent
                        governed.set_error(f"tool call {call.name!r} blocked by policy")  # masked, bounded
        if blocking:
            raise PolicyBlockedError(blocking)

    def model_span(self, agent: AgentIdentity, *, check: Check) -> AbstractContextManager[GovernedSpan]:
        """A ``chat {agent}`` span around one model call made outside any round of an instrumented
        agent (a team's selector model, say); ``check`` runs first and a block raises, as in
        :meth:`round_span`."""
        attributes: dict[str, AttributeValue] = {names.GEN_AI_OPERATION_NAME: names.OP_CHAT}
        attributes.update(agent.attributes)
        return self._telemetry.governed_span(
            names.span_name(names.OP_CHAT, agent.display_name),
            attributes=attributes,
            check=check if agent.enforced else None,
        )

    def register_agent(
        self,
        agent_id: str,
        name: str | None = None,
        type: str = "chatbot",
        platform: str = "custom",
        environment: str | None = None,
        description: str | None = None,
        *,
        owner_email: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Register the agent with Execlave (``POST /api/v1/agents``; if it already exists, it is
        looked up). Returns the agent's record, with its Execlave UUID as ``"id"``; from then on its
        kill switch is polled. Needs an API key. Raises ExeclaveAuthError / ExeclaveError."""
        body: dict[str, Any] = {
            "agentId": validate_agent_id(agent_id),
            "name": name or agent_id,
            "type": type,
            "platform": platform,
            "environment": environment or self.environment,
        }
        if description:
            body["description"] = description
        if owner_email:
            body["ownerEmail"] = owner_email
        if tags is not None:
            body["tags"] = list(tags)
        if metadata is not None:
            body["metadata"] = dict(metadata)
        body.update(extra)
        return self._require_connection().agents.register(body)

    def _require_connection(self) -> Connection:
        if self._connection is None:
            raise ExeclaveError("register_agent needs an Execlave API key (api_key= or EXECLAVE_API_KEY)")
        return self._connection

    def enforce_policy(
        self,
        agent_id: str,
        input: str | None,
        *,
        tools: Sequence[str | Mapping[str, Any]] | None = None,
        environment: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        conversation_history: Sequence[Mapping[str, Any]] | None = None,
        tool_outputs: Sequence[Mapping[str, Any] | ToolOutput] | None = None,
    ) -> dict[str, Any]:
        """Check an input (and optionally the tools about to be called, or tool outputs about to
        reach the model): local policies, then Execlave when a key is set.

        Returns ``{"allowed": True, "warnings": [...]}`` or raises an
        :class:`~execlave.errors.EnforcementHaltError` (PolicyBlockedError with the violations,
        AgentPausedError, PolicyDeniedError, ApprovalTimeoutError, ...). Don't call this next to
        an instrumented agent: the wrapper already runs the same checks.
        """
        validate_agent_id(agent_id)
        request = CheckRequest(
            agent_id=agent_id,
            input=input,
            tool_calls=_tool_calls(tools),
            tool_outputs=_tool_outputs(tool_outputs),
            environment=environment or self.environment,
            metadata=metadata,
            count_request=True,
        )
        history = list(conversation_history) if conversation_history else None
        attributes = {names.GEN_AI_AGENT_ID: agent_id, names.EXECLAVE_OPERATION: names.OP_ENFORCE_POLICY}
        with self._telemetry.governed_span(
            names.span_name(names.OP_ENFORCE_POLICY, agent_id),
            attributes=attributes,
            check=lambda: self.decide(request, history),
        ) as governed:
            return {"allowed": True, "warnings": governed.decision.warnings}

    def pause_agent(self, agent_id: str, reason: str | None = None) -> None:
        """Local kill switch: every later check for this agent (and only this one) raises
        AgentPausedError until :meth:`resume_agent`; a pause or resume in Execlave never lifts it."""
        self._engine.pause(validate_agent_id(agent_id), reason)

    def resume_agent(self, agent_id: str) -> None:
        """Lift a local :meth:`pause_agent` (a pause set in Execlave stays until lifted there)."""
        self._engine.resume(validate_agent_id(agent_id))

    def reload_policies(self, policies: PolicySource) -> int:
        """Compile a new local policy set and swap it in atomically; returns its version.
        On an invalid set, raises PolicyConfigError and the current set stays in force."""
        return self._engine.reload(resolve_policy_source(policies))

    def span_processor(self, *, raise_on_block: bool = False) -> GovernanceSpanProcessor:
        """A SpanProcessor that governs other instrumentations' tool spans (see its docs for limits)."""
        return GovernanceSpanProcessor(self.decide, raise_on_block=raise_on_block)

    # -- telemetry lifecycle -----------------------------------------------------------------

    def _flush_reports(self) -> Callable[[float], bool]:
        """Start delivering pending fail-open reports on a worker; the returned function waits for
        it at most the given seconds (so reports and spans share one timeout, not one each)."""
        connection = self._connection
        if connection is None:
            return lambda _remaining: True
        done: list[bool] = []
        worker = threading.Thread(
            target=lambda: done.append(connection.flush()), name="execlave-report-flush", daemon=True
        )
        worker.start()

        def wait(remaining: float) -> bool:
            worker.join(max(remaining, 0.0))
            return bool(done and done[0])

        return wait

    def flush(self, timeout: float = 5.0) -> bool:
        """Export pending spans and deliver pending fail-open reports. Returns within ``timeout``
        (+ a small margin) even if an endpoint is down; ``False`` if not everything went out."""
        deadline = time.monotonic() + timeout
        reports = self._flush_reports()
        spans = self._telemetry.flush(timeout)
        return reports(deadline - time.monotonic()) and spans

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Flush and stop exporting and polling; bounded like :meth:`flush`. Enforcement keeps working."""
        deadline = time.monotonic() + timeout
        reports = self._flush_reports()
        spans = self._telemetry.shutdown(timeout)
        delivered = reports(deadline - time.monotonic())
        if self._connection is not None:
            self._connection.close(timeout=max(0.0, min(deadline - time.monotonic(), 2.0)))
        return delivered and spans

    def stats(self) -> dict[str, int]:
        """Counters: spans exported and dropped, server decisions, bypasses, policy set version."""
        connection = self._connection.stats() if self._connection is not None else {}
        return {**self._telemetry.stats(), **connection, "policy_set_version": self._engine.version}

    def __enter__(self) -> Execlave:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()
