"""The local stack for real: an OpenTelemetry Collector built with exactly the components in
``collector-config/`` and Jaeger v2, both as processes on loopback, run with the repository's config
files verbatim (only addresses moved, through the collector's ``--set``).

- ``validate`` accepts every file in ``collector-config/`` as it is deployed, and rejects a broken one;
- the demo's spans go app -> collector -> Jaeger, and Jaeger's query API returns the span tree, the
  blocked rounds' ERROR status and violation events, and ``service.name``;
- with the Execlave fan-out merged in (as docker-compose.execlave.yml does), only execlave's spans
  reach a loopback stand-in for Execlave, with the key from the environment; the app's own spans
  stay local;
- a headless-Chromium screenshot of the demo's traces as Jaeger returned them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stack
import yaml
from infra import binaries
from jaeger_model import Span, as_html, as_text, roots_of, spans_of

from support.otlp import HttpReceiver
from support.requires import require
from support.waiting import wait_until

ROOT = stack.ROOT
DEPLOYED = {  # each file in collector-config/, and the --config list it is deployed with
    "otel-collector.yaml": [stack.BASE_CONFIG],
    "execlave-fanout.yaml": [stack.BASE_CONFIG, stack.FANOUT_CONFIG],  # docker-compose.execlave.yml
}
FANOUT_ENV = {"EXECLAVE_OTLP_ENDPOINT": "http://127.0.0.1:9", "EXECLAVE_API_KEY": "exk_test_validate"}
ARRIVAL_TIMEOUT = 60.0  # a bound for spans to pass app -> collector (1 s batches) -> Jaeger


def run_example(script: str, endpoint: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "EXECLAVE_"))}
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, **extra_env)
    proc = subprocess.run(
        [sys.executable, script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


# --- validate -------------------------------------------------------------------------------------


def test_every_config_file_has_a_deployment() -> None:
    assert {p.name for p in stack.CONFIG_DIR.glob("*.y*ml")} == set(DEPLOYED)


@pytest.mark.parametrize("name", sorted(DEPLOYED))
def test_collector_validate_accepts_the_config_as_deployed(collector_bin: Path, name: str) -> None:
    result = stack.validate(collector_bin, DEPLOYED[name], env=FANOUT_ENV)
    assert result.returncode == 0, result.stdout + result.stderr


def test_collector_validate_rejects_the_fanout_without_its_endpoint(collector_bin: Path) -> None:
    """validate really checks: the fan-out with EXECLAVE_OTLP_ENDPOINT unset is refused, by name."""
    env = {k: v for k, v in os.environ.items() if k not in FANOUT_ENV}
    result = subprocess.run(
        [str(collector_bin), "validate", *(f"--config={c}" for c in DEPLOYED["execlave-fanout.yaml"])],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "otlphttp/execlave" in result.stderr and "endpoint" in result.stderr


# --- the demo through collector and Jaeger ---------------------------------------------------------


@pytest.fixture(scope="module")
def demo_traces(collector_bin: Path, jaeger_bin: Path, artifacts: Path) -> Iterator[dict[str, Any]]:
    """Runs examples/demo.py against the collector (base config) and waits until Jaeger has it all."""
    require("autogen")
    logs = artifacts / "demo"
    logs.mkdir(exist_ok=True)
    with (
        stack.jaeger(jaeger_bin, logs) as jaeger,
        stack.collector(collector_bin, [stack.BASE_CONFIG], jaeger.otlp_grpc_port, logs) as collector,
    ):
        demo = run_example("examples/demo.py", collector.http_endpoint, OTEL_SERVICE_NAME="execlave-demo")
        found: list[dict[str, Any]] = []

        def complete() -> bool:
            found[:] = jaeger.traces("execlave-demo")
            return len(governed(_all_spans(found))) >= 8

        assert wait_until(complete, ARRIVAL_TIMEOUT), (
            f"Jaeger did not get the demo's spans in {ARRIVAL_TIMEOUT:.0f} s; it has "
            f"{as_text(found)!r}\n--- collector log:\n{collector.process.log_text()}"
        )
        (artifacts / "demo-trace.txt").write_text(as_text(found) + "\n")
        yield {
            "traces": found,
            "jaeger": jaeger,
            "services": jaeger.services(),
            "collector": collector,
            "demo": demo,
        }


def _all_spans(traces: list[dict[str, Any]]) -> list[Span]:
    return [s for t in traces for s in spans_of(t)]


def governed(spans: list[Span]) -> list[Span]:
    """execlave's round and tool spans (not a conversation root, if the SDK opens one)."""
    return [s for s in spans if s.name.split(" ")[0] in {"invoke_agent", "check_tool", "execute_tool"}]


def violations(span: Span) -> list[dict[str, Any]]:
    return [attrs for name, attrs in span.events if name == "execlave.policy.violation"]


def _parent(span: Span, spans: list[Span]) -> Span:
    (parent,) = [p for p in spans if p.span_id == span.parent_id and p.trace_id == span.trace_id]
    return parent


def test_demo_spans_reach_jaeger_with_service_name(demo_traces: dict[str, Any]) -> None:
    spans = _all_spans(demo_traces["traces"])
    assert "execlave-demo" in demo_traces["services"]
    assert {s.service for s in spans} == {"execlave-demo"}
    assert {s.tags.get("otel.scope.name") for s in spans} == {"execlave"}
    # execlave's per-round spans; any other span is a conversation root above them.
    assert all(s.parent_id is None for s in spans if s not in governed(spans))
    assert sorted(s.name for s in governed(spans)) == sorted(
        ["invoke_agent ops_assistant"] * 4
        + ["invoke_agent executor", "check_tool get_disk_usage", "check_tool delete_logs"]
        + ["execute_tool get_disk_usage"]
    )


def test_demo_metrics_reach_the_collector(demo_traces: dict[str, Any]) -> None:
    """execlave owns the demo's pipeline, so its metrics go to the collector with the traces
    (the base config's metrics pipeline logs them through the debug exporter)."""
    collector = demo_traces["collector"]
    assert wait_until(lambda: '"data points"' in collector.process.log_text(), ARRIVAL_TIMEOUT), (
        collector.process.log_text()
    )
    assert "metrics" not in demo_traces["demo"].stderr.lower()  # no failed metric export logged


def test_demo_span_tree_in_jaeger(demo_traces: dict[str, Any]) -> None:
    spans = _all_spans(demo_traces["traces"])
    # Every tool span hangs under the agent round that asked for / ran it, in the same trace.
    for name, agent in [
        ("check_tool get_disk_usage", "invoke_agent ops_assistant"),
        ("check_tool delete_logs", "invoke_agent ops_assistant"),
        ("execute_tool get_disk_usage", "invoke_agent executor"),
    ]:
        (span,) = [s for s in spans if s.name == name]
        assert _parent(span, spans).name == agent, name
    # delete_logs was checked and blocked, never executed.
    assert not [s for s in spans if s.name == "execute_tool delete_logs"]
    # Each conversation's spans share one trace whatever its shape: every span's parent is in its trace.
    for trace in demo_traces["traces"]:
        roots = roots_of(trace)
        assert len(roots) == 1, [r.name for r in roots]


def test_demo_blocks_are_errors_with_violation_events(demo_traces: dict[str, Any]) -> None:
    spans = _all_spans(demo_traces["traces"])
    blocked = [s for s in spans if s.name.startswith("invoke_agent") and s.decision == "block"]
    assert len(blocked) == 2 and all(s.error for s in blocked)
    allowed = [s for s in spans if s.name.startswith("invoke_agent") and s.decision == "allow"]
    assert len(allowed) == 3 and not any(s.error for s in allowed)

    # The blocked tool call: the violation is on its check_tool span, under an ERROR round.
    (check,) = [s for s in spans if s.name == "check_tool delete_logs"]
    assert check.decision == "block" and check.error and _parent(check, spans) in blocked
    (event,) = violations(check)
    assert event["execlave.policy.id"] == "ops-no-destructive-tools"
    assert event["execlave.violation.target"] == "tool_call"
    assert event["execlave.violation.tool_name"] == "delete_logs"
    assert not violations(_parent(check, spans))

    # The blocked input: the violation is on the round span itself; the matched text is not recorded.
    (input_block,) = [s for s in blocked if violations(s)]
    assert input_block is not _parent(check, spans)
    (attrs,) = violations(input_block)
    assert attrs["execlave.policy.id"] == "ops-no-destructive-commands"
    assert attrs["execlave.violation.target"] == "input"
    assert not any("rm -rf" in str(v) for s in spans for v in [*s.tags.values(), *s.events])


def test_screenshot_of_the_demo_traces(demo_traces: dict[str, Any], artifacts: Path) -> None:
    """The picture for the README: the demo's traces as Jaeger's query API returned them."""
    if stack.chromium() is None:
        pytest.skip(
            "chromium is not installed (the local_stack session installs it with apt-get where it can): "
            "no screenshot; the trace assertions above do not need it"
        )
    page = artifacts / "demo-traces.html"
    page.write_text(
        as_html(
            demo_traces["traces"],
            f"examples/demo.py as stored in Jaeger {binaries.JAEGER_V2_VERSION}",
            f"service execlave-demo, via collector {binaries.COLLECTOR.version} with "
            "collector-config/otel-collector.yaml; drawn by tests/local_stack from Jaeger's /api/traces",
        )
    )
    out = artifacts / "jaeger-demo-traces.png"
    out.unlink(missing_ok=True)
    result = stack.screenshot(page.as_uri(), out)
    assert result.returncode == 0 and out.is_file(), result.stdout + result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    print(f"screenshot: {out}")


# --- the Execlave fan-out ----------------------------------------------------------------------------


def test_fanout_sends_only_execlave_spans_to_execlave(
    collector_bin: Path, jaeger_bin: Path, artifacts: Path
) -> None:
    require("autogen")
    logs = artifacts / "fanout"
    logs.mkdir(exist_ok=True)
    key = "exk_local_stack_fanout_key"
    with (
        HttpReceiver() as execlave,
        stack.jaeger(jaeger_bin, logs) as jaeger,
        stack.collector(
            collector_bin,
            DEPLOYED["execlave-fanout.yaml"],
            jaeger.otlp_grpc_port,
            logs,
            env={"EXECLAVE_OTLP_ENDPOINT": execlave.endpoint, "EXECLAVE_API_KEY": key},
        ) as collector,
    ):
        run_example("examples/existing_tracing.py", collector.http_endpoint)
        # The local pipeline is untouched: Jaeger gets all six spans, the app's and execlave's.
        assert wait_until(lambda: len(_all_spans(jaeger.traces("ops-api"))) >= 6, ARRIVAL_TIMEOUT)
        local = _all_spans(jaeger.traces("ops-api"))
        assert {s.tags.get("otel.scope.name") for s in local} == {"ops-api", "execlave"}
        shipped = execlave.wait_for(4, ARRIVAL_TIMEOUT)

    assert sorted(s.name for s in shipped) == sorted(
        ["invoke_agent ops_assistant"] * 2 + ["check_tool get_disk_usage", "check_tool delete_logs"]
    )
    assert {s.scope for s in shipped} == {"execlave"}
    assert not [s for s in shipped if s.name == "POST /ops/chat"]
    assert {s.resource.get("service.name") for s in shipped} == {"ops-api"}
    assert execlave.requests and all(
        r["headers"]["authorization"] == f"Bearer {key}" for r in execlave.requests
    )


# --- versions: what compose runs is what this suite ran -----------------------------------------------


def _requires(go_mod: Path) -> dict[str, str]:
    return dict(re.findall(r"^\s+(\S+) (v\S+)", go_mod.read_text(), re.M))


def test_compose_images_are_the_versions_the_suite_builds() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert (
        compose["otel-collector"]["image"]
        == f"otel/opentelemetry-collector-contrib:{binaries.COLLECTOR.version}"
    )
    assert compose["jaeger"]["image"] == f"jaegertracing/jaeger:{binaries.JAEGER_V2_VERSION}"
    jaeger = _requires(binaries.JAEGER.module / "go.mod")
    assert jaeger["github.com/jaegertracing/jaeger"] == f"v{binaries.JAEGER.version}"


def test_collector_modules_are_all_at_one_release() -> None:
    collector = {
        m: v
        for m, v in _requires(binaries.COLLECTOR.module / "go.mod").items()
        if m.startswith(
            ("go.opentelemetry.io/collector", "github.com/open-telemetry/opentelemetry-collector")
        )
    }
    # Collector modules come in two series released together: v0.X (unstable) and v1.Y (stable).
    assert {v for v in collector.values() if v.startswith("v0.")} == {f"v{binaries.COLLECTOR.version}"}
    assert len({v for v in collector.values() if v.startswith("v1.")}) == 1
    main_go = (binaries.COLLECTOR.module / "main.go").read_text()
    assert f'Version:     "{binaries.COLLECTOR.version}"' in main_go


def test_readme_shows_the_committed_screenshot() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "docs/local-stack-traces.png" in re.findall(r"!\[[^\]]+\]\(([\w/.-]+\.png)\)", readme)
    assert (ROOT / "docs" / "local-stack-traces.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
