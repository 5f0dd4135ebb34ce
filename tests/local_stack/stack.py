"""The local stack as real processes on loopback: the collector (built from ``infra/otelcol``) run with
the repository's ``collector-config/`` files verbatim, Jaeger v2 (``infra/jaeger``) with its own
in-memory config, Jaeger's query API, and a headless-Chromium screenshot.

The config files are passed as they are; only their listen and export addresses are moved to free
loopback ports, through the collector's own ``--set`` flag (the files bind ``0.0.0.0`` for
containers and export to the compose host ``jaeger:4317``). The collector's own metrics listener is
switched off the same way (it would take the fixed port 8888).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "collector-config"
BASE_CONFIG = CONFIG_DIR / "otel-collector.yaml"
FANOUT_CONFIG = CONFIG_DIR / "execlave-fanout.yaml"
JAEGER_CONFIG = Path(__file__).resolve().parent / "infra" / "jaeger.yaml"
START_TIMEOUT = 60.0  # a bound for a process to come up on a loaded 2-core machine


class StackError(RuntimeError):
    """A process did not come up; the message carries its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


@dataclass
class Process:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StackError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if ready():
                    return
            except (OSError, urllib.error.URLError, ValueError):
                pass
            time.sleep(0.1)
        raise StackError(f"{self.name} not ready after {START_TIMEOUT:.0f} s:\n{self.log_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@contextmanager
def _run(name: str, argv: Sequence[str], env: Mapping[str, str], logs: Path) -> Iterator[Process]:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=dict(env), stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    process = Process(name, proc, log)
    try:
        yield process
    finally:
        process.stop()


@dataclass
class Jaeger:
    process: Process
    otlp_grpc_port: int
    query_port: int

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    def services(self) -> list[str]:
        return list(get_json(f"{self.query_url}/api/services").get("data") or [])

    def traces(self, service: str) -> list[dict[str, Any]]:
        """Every trace Jaeger holds for ``service`` (its UI's own query API)."""
        url = f"{self.query_url}/api/traces?service={service}&limit=100&lookback=1h"
        return list(get_json(url).get("data") or [])


@contextmanager
def jaeger(binary: Path, logs: Path) -> Iterator[Jaeger]:
    ports = {
        name: free_port()
        for name in ("JAEGER_OTLP_GRPC_PORT", "JAEGER_QUERY_HTTP_PORT", "JAEGER_QUERY_GRPC_PORT")
    }
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}}
    with _run("jaeger", [str(binary), f"--config={JAEGER_CONFIG}"], env, logs) as process:
        running = Jaeger(process, ports["JAEGER_OTLP_GRPC_PORT"], ports["JAEGER_QUERY_HTTP_PORT"])
        # Up when its OTLP port accepts and its query API answers (services() raises until then).
        process.wait_ready(
            lambda: _port_open(running.otlp_grpc_port) and isinstance(running.services(), list)
        )
        yield running


@dataclass
class Collector:
    process: Process
    grpc_port: int
    http_port: int

    @property
    def http_endpoint(self) -> str:
        """For OTEL_EXPORTER_OTLP_ENDPOINT (OTLP/HTTP)."""
        return f"http://127.0.0.1:{self.http_port}"


def loopback_overrides(grpc_port: int, http_port: int, jaeger_grpc_port: int) -> list[str]:
    """The only changes made to the config files: addresses, and no fixed-port metrics listener."""
    return [
        f"--set=receivers::otlp::protocols::grpc::endpoint=127.0.0.1:{grpc_port}",
        f"--set=receivers::otlp::protocols::http::endpoint=127.0.0.1:{http_port}",
        f"--set=exporters::otlp/jaeger::endpoint=127.0.0.1:{jaeger_grpc_port}",
        "--set=service::telemetry::metrics::level=none",
    ]


@contextmanager
def collector(
    binary: Path,
    configs: Sequence[Path],
    jaeger_grpc_port: int,
    logs: Path,
    env: Mapping[str, str] | None = None,
) -> Iterator[Collector]:
    grpc_port, http_port = free_port(), free_port()
    argv = [
        str(binary),
        *(f"--config={c}" for c in configs),
        *loopback_overrides(grpc_port, http_port, jaeger_grpc_port),
    ]
    with _run("otelcol", argv, {**os.environ, **(env or {})}, logs) as process:
        process.wait_ready(lambda: _port_open(grpc_port) and _port_open(http_port))
        yield Collector(process, grpc_port, http_port)


def validate(
    binary: Path, configs: Sequence[Path], env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The collector's own ``validate`` subcommand on the files exactly as they are."""
    argv = [str(binary), "validate", *(f"--config={c}" for c in configs)]
    return subprocess.run(
        argv, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=60, check=False
    )


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(url: str, out: Path, size: tuple[int, int] = (1400, 900)) -> subprocess.CompletedProcess[str]:
    """Headless Chromium saves ``url`` as a PNG at ``out``."""
    browser = chromium()
    if browser is None:
        raise StackError("chromium is not installed")
    with tempfile.TemporaryDirectory(prefix="execlave-chromium-") as profile:
        argv = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--screenshot={out}",
            f"--window-size={size[0]},{size[1]}",
            "--virtual-time-budget=5000",
            url,
        ]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
