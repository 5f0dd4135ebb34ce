"""An application that already traces: execlave's agent spans join the app's own traces.

The app owns an OpenTelemetry SDK ``TracerProvider`` (set globally, exporting over OTLP/HTTP to the
collector from docker-compose.yml, or to ``OTEL_EXPORTER_OTLP_ENDPOINT``) and opens a request span
per incoming request. Execlave is created *after* the app set its provider and is given nothing
else: it finds the global provider, creates its spans there (children of the app's request span,
in the same trace) and installs no provider or collector exporter of its own, so each span is
exported once, by the app's pipeline.

    docker compose up -d
    .venv/bin/python examples/existing_tracing.py     # then open http://localhost:16686

No API key, no model: the assistant is a scripted stand-in (offline).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from autogen import Agent, ConversableAgent
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from execlave import Execlave
from execlave.errors import PolicyBlockedError
from execlave.integrations.autogen import instrument_autogen_agent

POLICIES = [
    {
        "id": "ops-tools",
        "name": "Ops tool allowlist",
        "policyType": "tool_invocation",
        "enforcementMode": "block",
        "ruleDefinition": {"allow": ["get_*"], "deny": ["delete_*"]},
    }
]


def setup_app_tracing() -> TracerProvider:
    """What the application already had before adopting execlave."""
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318").rstrip("/")
    provider = TracerProvider(resource=Resource.create({"service.name": "ops-api"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
    trace.set_tracer_provider(provider)
    return provider


def scripted_model(recipient: Any, messages: Any = None, sender: Any = None, config: Any = None) -> Any:
    text = str((messages or [{}])[-1].get("content") or "")
    name = "delete_logs" if "free space" in text else "get_disk_usage"
    call = {"name": name, "arguments": json.dumps({"host": "web-1"})}
    return True, {"content": None, "tool_calls": [{"id": "call-1", "type": "function", "function": call}]}


def main() -> int:
    provider = setup_app_tracing()
    app_tracer = trace.get_tracer("ops-api")

    exe = Execlave(policies=POLICIES)  # no tracer_provider=: uses the app's global one
    assistant = ConversableAgent("ops_assistant", llm_config=False, human_input_mode="NEVER")
    assistant.register_reply([Agent, None], scripted_model, position=0)
    instrument_autogen_agent(assistant, exe, agent_id="ops-assistant")

    outcomes = []
    for request in ("check disk usage on web-1", "free space on web-1"):
        with app_tracer.start_as_current_span("POST /ops/chat") as span:
            span.set_attribute("app.request", request)
            try:
                reply = assistant.generate_reply(messages=[{"role": "user", "content": request}])
                outcomes.append(f"allowed: {reply['tool_calls'][0]['function']['name']}")
            except PolicyBlockedError as exc:
                span.set_attribute("app.blocked", True)
                outcomes.append(f"blocked: {[v['policyId'] for v in exc.violations]}")
    for line in outcomes:
        print(line)

    provider.shutdown()  # the app's own pipeline exports everything, once
    return 0 if outcomes == ["allowed: get_disk_usage", "blocked: ['ops-tools']"] else 1


if __name__ == "__main__":
    sys.exit(main())
