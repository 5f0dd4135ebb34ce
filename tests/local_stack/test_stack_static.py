"""Docker does not run in CI, so the local stack is validated statically: the files parse, the
collector pipelines only name components that are defined, ports agree everywhere, images are
pinned, and every variable the collector reads is passed by compose and documented."""

import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
OVERRIDE = yaml.safe_load((ROOT / "docker-compose.execlave.yml").read_text())
BASE = yaml.safe_load((ROOT / "collector-config" / "otel-collector.yaml").read_text())
FANOUT = yaml.safe_load((ROOT / "collector-config" / "execlave-fanout.yaml").read_text())
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
README = (ROOT / "README.md").read_text()
CONFIG_DIR = "/etc/otelcol-contrib/"


def merge(a, b):
    """The collector's merge of several --config files: maps merge recursively, the rest is replaced."""
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: merge(a[k], b[k]) if k in a and k in b else b.get(k, a.get(k)) for k in {**a, **b}}
    return b


def env_example_vars():
    return {m.group(1) for m in re.finditer(r"^([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE, re.M)}


def published(service):
    return {int(p.split(":")[-2]): int(p.split(":")[-1]) for p in service.get("ports", [])}


@pytest.mark.parametrize("config", [BASE, merge(BASE, FANOUT)], ids=["base", "with-execlave-fanout"])
def test_every_pipeline_component_is_defined(config):
    pipelines = config["service"]["pipelines"]
    assert pipelines
    for name, pipeline in pipelines.items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in config.get(kind, {}), f"{name}: {kind[:-1]} {component!r} is not defined"
        assert pipeline["receivers"] and pipeline["exporters"]


def test_base_pipeline_shape():
    traces = BASE["service"]["pipelines"]["traces"]
    assert traces["processors"][0] == "memory_limiter" and "batch" in traces["processors"]
    assert set(traces["exporters"]) == {"otlp/jaeger", "debug"}
    assert set(BASE["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}
    metrics = BASE["service"]["pipelines"]["metrics"]  # execlave's metrics come with its traces
    assert metrics["receivers"] == ["otlp"] and metrics["exporters"] == ["debug"]


def test_fanout_sends_only_execlave_spans_with_key_from_env():
    pipeline = FANOUT["service"]["pipelines"]["traces/execlave"]
    assert pipeline["exporters"] == ["otlphttp/execlave"]
    assert "filter/execlave-only" in pipeline["processors"]
    (condition,) = FANOUT["processors"]["filter/execlave-only"]["traces"]["span"]
    assert condition == 'instrumentation_scope.name != "execlave"'
    exporter = FANOUT["exporters"]["otlphttp/execlave"]
    assert exporter["headers"]["Authorization"] == "Bearer ${env:EXECLAVE_API_KEY}"
    text = (ROOT / "collector-config" / "execlave-fanout.yaml").read_text()
    assert not re.search(r"exk_|sk-[A-Za-z0-9]{10}", text), "no literal key in the config"


def test_collector_ports_agree_between_compose_config_env_and_readme():
    collector, jaeger = COMPOSE["services"]["otel-collector"], COMPOSE["services"]["jaeger"]
    ports = published(collector)
    assert ports == {4317: 4317, 4318: 4318}
    grpc = BASE["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    http = BASE["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert (grpc, http) == ("0.0.0.0:4317", "0.0.0.0:4318")
    # OTLP ports are published by the collector only; Jaeger publishes just its UI.
    assert published(jaeger) == {16686: 16686}
    endpoint = re.search(r"^OTEL_EXPORTER_OTLP_ENDPOINT=(\S+)", ENV_EXAMPLE, re.M).group(1)
    assert urlparse(endpoint).port == 4318
    assert "http://localhost:16686" in README and "http://localhost:4318" in README


def test_jaeger_exporter_points_at_the_jaeger_service():
    host, port = BASE["exporters"]["otlp/jaeger"]["endpoint"].split(":")
    assert host in COMPOSE["services"] and port == "4317"


@pytest.mark.parametrize("compose", [COMPOSE, OVERRIDE], ids=["compose", "override"])
def test_config_files_are_mounted_where_the_image_reads_them(compose):
    collector = compose["services"]["otel-collector"]
    configs = [arg.split("=", 1)[1] for arg in collector["command"] if arg.startswith("--config=")]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in collector["volumes"]}
    assert configs[0] == CONFIG_DIR + "config.yaml"
    for path in configs:
        assert path in mounts, f"{path} is not mounted"
        assert (ROOT / mounts[path]).is_file()


def test_images_are_pinned():
    for name, service in COMPOSE["services"].items():
        tag = service["image"].rpartition(":")[2]
        assert re.fullmatch(r"\d+\.\d+\.\d+", tag), f"{name}: image {service['image']!r} is not pinned"
    assert COMPOSE["services"]["jaeger"]["image"].startswith("jaegertracing/jaeger:2.")
    assert COMPOSE["services"]["otel-collector"]["image"].startswith("otel/opentelemetry-collector-contrib:")


def test_execlave_otlp_endpoint_has_no_default():
    """Execlave's API host serves trace ingest, not OTLP: the fan-out needs an endpoint the user names."""
    passed = OVERRIDE["services"]["otel-collector"]["environment"]["EXECLAVE_OTLP_ENDPOINT"]
    assert re.fullmatch(r"\$\{EXECLAVE_OTLP_ENDPOINT:\?[^}]+\}", passed), passed
    assert FANOUT["exporters"]["otlphttp/execlave"]["endpoint"] == "${env:EXECLAVE_OTLP_ENDPOINT}"
    assert re.search(r"^EXECLAVE_OTLP_ENDPOINT=$", ENV_EXAMPLE, re.M), "documented, unset by default"
    assert "api.execlave.com" not in (ROOT / "docker-compose.execlave.yml").read_text()


def test_every_collector_env_var_is_passed_by_compose_and_documented():
    used = set()
    for path in (ROOT / "collector-config").glob("*.yaml"):
        used |= set(re.findall(r"\$\{env:([A-Z0-9_]+)\}", path.read_text()))
    assert used == {"EXECLAVE_OTLP_ENDPOINT", "EXECLAVE_API_KEY"}
    passed = set(OVERRIDE["services"]["otel-collector"]["environment"])
    assert used <= passed
    assert used <= env_example_vars()


def test_env_example_lists_every_variable_the_sdk_reads():
    sdk_vars = set()
    for path in (ROOT / "src" / "execlave").rglob("*.py"):
        sdk_vars |= set(re.findall(r"[\"']((?:EXECLAVE|OTEL)_[A-Z0-9_]+)[\"']", path.read_text()))
    missing = sdk_vars - env_example_vars()
    assert not missing, f".env.example does not document {sorted(missing)}"
