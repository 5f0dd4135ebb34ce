"""Fixtures for the hardening tests (``provider`` / ``exporter`` come from tests/conftest.py): a client
enforcing the adversarial corpus's policy set, and the corpus's tool-call shapes.

No framework is imported here: the classic and AgentChat modules each ``require`` their own."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from execlave import Execlave
from support.adversarial import POLICIES_FILE
from support.waiting import wait_until

DEEP = 3_000  # nesting levels: json.loads raises RecursionError well before this depth
TIMEOUT = 60.0  # joins / wait_for bounds: a deadlock fails the test instead of hanging the run


@pytest.fixture
def make_exe(provider: TracerProvider) -> Iterator[Callable[..., Execlave]]:
    created: list[Execlave] = []

    def make(**kwargs: Any) -> Execlave:
        kwargs.setdefault("policies", POLICIES_FILE)
        kwargs.setdefault("tracer_provider", provider)
        client = Execlave(**kwargs)
        created.append(client)
        return client

    yield make
    for client in created:
        client.shutdown(timeout=1.0)


@pytest.fixture
def corpus_exe(make_exe: Callable[..., Execlave]) -> Execlave:
    """A client enforcing ``tests/adversarial/data/policies.yaml``."""
    return make_exe()


# -- argument encodings: how a model client may hand over a corpus call's arguments ----------


def args_json(arguments: Any) -> str:
    """JSON text (a string in the corpus stays as it is: it may be deliberately malformed)."""
    if arguments is None:
        return "{}"
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def args_not_json(arguments: Any) -> str:
    """The JSON text cut short: never parses, but still carries everything the arguments hold."""
    return args_json(arguments) + ', "tail": '


def args_deep(arguments: Any) -> str:
    """The arguments buried ``DEEP`` levels down in JSON (too deep for json.loads)."""
    return '{"a": ' * DEEP + args_json(arguments) + "}" * DEEP


ARGUMENT_ENCODINGS: dict[str, Callable[[Any], str]] = {
    "json": args_json,
    "not_json": args_not_json,
    "deep": args_deep,
}


# -- span trees: which spans belong to which chat -------------------------------------------

SCOPE = "execlave"


class Chat:
    """One chat of a concurrency test: its app-level root span, the agent ids that may appear in
    it, and whether it was given bad input (and so must show a block)."""

    def __init__(self, key: str, agent_ids: set[str], bad: bool) -> None:
        self.key = key
        self.agent_ids = agent_ids
        self.bad = bad
        self.trace_id: int | None = None
        self.root_id: int | None = None
        self.outcome: str | None = None  # "ok" | "blocked", set by the test

    def root(self, span: Any) -> None:
        ctx = span.get_span_context()
        self.trace_id, self.root_id = ctx.trace_id, ctx.span_id


def assert_chat_trees(spans: Any, chats: list[Chat]) -> dict[str, list[ReadableSpan]]:
    """Every execlave span belongs to exactly one chat's trace and forms a correct tree under the
    chat's root span: its ``execlave.conversation`` span is a child of the root, ``invoke_agent``
    spans children of that conversation span, ``check_tool`` /
    ``execute_tool`` spans children of an ``invoke_agent`` span of the same agent in the same
    chat; only that chat's agent ids appear; blocks appear in exactly the chats given bad input."""
    by_trace = {c.trace_id: c for c in chats}
    assert len(by_trace) == len(chats), "two chats share a trace id"
    grouped: dict[str, list[ReadableSpan]] = {c.key: [] for c in chats}
    for span in spans:
        if span.instrumentation_scope is None or span.instrumentation_scope.name != SCOPE:
            continue
        chat = by_trace.get(span.context.trace_id)
        assert chat is not None, f"span {span.name} is in no chat's trace"
        grouped[chat.key].append(span)
    for chat in chats:
        own = grouped[chat.key]
        assert own, f"chat {chat.key} recorded no spans"
        by_id = {s.context.span_id: s for s in own}
        for span in own:
            assert span.attributes["gen_ai.agent.id"] in chat.agent_ids, (chat.key, span.name)
            assert span.parent is not None
            if span.name == "execlave.conversation":  # the chat's one conversation root
                assert span.parent.span_id == chat.root_id, (chat.key, span.name)
            elif span.name.startswith("invoke_agent"):
                parent = by_id.get(span.parent.span_id)
                assert parent is not None and parent.name == "execlave.conversation", (chat.key, span.name)
            else:
                parent = by_id.get(span.parent.span_id)
                assert parent is not None and parent.name.startswith("invoke_agent"), (chat.key, span.name)
                assert parent.attributes["gen_ai.agent.id"] == span.attributes["gen_ai.agent.id"]
        blocked = [s for s in own if s.attributes.get("execlave.policy.decision") == "block"]
        assert bool(blocked) == chat.bad, (chat.key, [s.name for s in blocked])
        assert chat.outcome == ("blocked" if chat.bad else "ok"), (chat.key, chat.outcome)
    return grouped


def span_names(spans: list[ReadableSpan]) -> list[str]:
    return sorted(s.name for s in spans)


RATE_LIMITED = "limited"
RATE_LIMIT = {
    "id": "rate-per-minute",
    "policyType": "rate_limit",
    "appliesToAgents": [RATE_LIMITED],
    "ruleDefinition": {"maxRequestsPerMinute": 20},
}


@pytest.fixture
def shared_exe(make_exe: Callable[..., Execlave]) -> Execlave:
    """One client for every thread / task: the corpus policies plus a per-minute rate limit on
    the agent id ``limited``."""
    from execlave.policy import load_policies

    return make_exe(policies=[*load_policies(POLICIES_FILE), *load_policies([RATE_LIMIT])])


# -- export faults ----------------------------------------------------------------------------

FAULTS = ["closed_port", "black_hole", "http_500"]
SINKS = ["collector", "execlave"]


class Faulty:
    """A client whose span export goes to a broken endpoint; ``exporter`` still sees its spans."""

    def __init__(self, exe: Execlave, sink: str, fault: str, server: Any) -> None:
        self.exe, self.sink, self.fault, self.server = exe, sink, fault, server

    def assert_export_failed(self) -> None:
        assert self.exe.flush(0.2) is False  # bounded, and reports that not everything went out
        if self.fault == "black_hole":
            assert wait_until(lambda: self.server.accepted >= 1), "the exporter never connected"
        elif self.fault == "http_500":
            sent = getattr(self.server, "calls", lambda route: self.server.requests)
            assert wait_until(lambda: len(sent("ingest")) >= 1), "the exporter never sent a request"
        assert self.exe.stats()["spans_exported"] == 0


@pytest.fixture(params=[(s, f) for s in SINKS for f in FAULTS], ids=lambda p: f"{p[0]}-{p[1]}")
def faulty(
    request: pytest.FixtureRequest, no_global_provider: None, exporter: InMemorySpanExporter
) -> Iterator[Faulty]:
    """The OTLP collector (execlave owns the provider) or the Execlave endpoint (with a key)
    down, hanging, or answering 500."""
    import contextlib

    from support.execlave_api import ExeclaveAPI
    from support.otlp import BlackHole, HttpReceiver, closed_port
    from support.secrets import HARDENING_KEY

    sink, fault = request.param
    with contextlib.ExitStack() as stack:
        server: Any = None
        if fault == "closed_port":
            url = f"http://127.0.0.1:{closed_port()}"
        elif fault == "black_hole":
            server = stack.enter_context(BlackHole())
            url = server.endpoint
        elif sink == "execlave":  # Execlave's trace-ingest API answering 500 (enforce still decides:
            # a host that answers 404 to enforce is a wrong base_url, which stops rounds)
            server = stack.enter_context(ExeclaveAPI(HARDENING_KEY))
            server.fault["ingest"] = 500
            url = server.base_url
        else:
            server = stack.enter_context(HttpReceiver(status=500))
            url = server.endpoint
        if sink == "collector":
            exe = Execlave(policies=POLICIES_FILE, otlp_endpoint=url)
            assert exe._telemetry.owns_provider
        else:
            exe = Execlave(
                api_key=HARDENING_KEY, base_url=url, policies=POLICIES_FILE, tracer_provider=TracerProvider()
            )
        exe._telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        try:
            yield Faulty(exe, sink, fault, server)
        finally:
            exe.shutdown(0.2)  # bounded even against an endpoint that never answers


def raise_in_engine(
    exe: Execlave, monkeypatch: pytest.MonkeyPatch, error: type[BaseException], only_tool_calls: bool
) -> list[Any]:
    """Make the engine's evaluate raise ``error`` (every request, or only requests carrying tool
    calls); returns the list of requests that raised."""
    original = exe._engine.evaluate
    raised: list[Any] = []

    def evaluate(request: Any) -> Any:
        if only_tool_calls and not request.tool_calls:
            return original(request)
        raised.append(request)
        raise error("bug inside execlave's enforcement path")

    monkeypatch.setattr(exe._engine, "evaluate", evaluate)
    return raised


ENGINE_ERRORS = [ZeroDivisionError, RecursionError, KeyError, TypeError]
