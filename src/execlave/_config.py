"""The client's configuration table: every :class:`~execlave.Execlave` option in one place, with its
keyword argument, environment variable, default and type.

Resolution order, for every option: the keyword argument (unless ``None``), else the environment
variable (unless unset or empty), else the default. Options marked ``resolved_in`` another module
pass the argument through and that module reads the variable (telemetry's ``OTEL_*`` variables
stay in :mod:`execlave.telemetry.config` and :mod:`execlave.telemetry.core`; the policy file in
:mod:`execlave.policy.loader`; the Execlave OTLP endpoint in :mod:`execlave.connection.ingest`),
with the same order. ``tests/core/test_config.py`` checks that ``Execlave.__init__``'s signature
and docstring agree with this table.

Pure Python: no OpenTelemetry, no httpx.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .connection.decisions import OutageMode

DEFAULT_BASE_URL = "https://api.execlave.com"
DEFAULT_ENVIRONMENT = "production"

Group = Literal["execlave", "policy", "telemetry"]


@dataclass(frozen=True)
class Option:
    """One row of the table."""

    name: str
    """The keyword argument of ``Execlave(...)``."""
    type: str
    """Its annotation, as written in the signature."""
    argument_default: object
    """The signature's default (``None`` = "not given": look further)."""
    default: object
    """The value in force when neither the argument nor the variable is given."""
    env: tuple[str, ...] = ()
    """Environment variables read, first set one wins."""
    group: Group = "execlave"
    resolved_in: str = "execlave._config"
    """The module that reads ``env`` (the client resolves its own; the others are referenced)."""


_TELEMETRY_CORE = "execlave.telemetry.core"
_TELEMETRY_CONFIG = "execlave.telemetry.config"

OPTIONS: tuple[Option, ...] = (
    Option("api_key", "str | None", None, None, ("EXECLAVE_API_KEY",)),
    Option(
        "policies",
        "PolicySource | None",
        None,
        "the bundled baseline (monitor mode)",
        ("EXECLAVE_POLICY_FILE",),
        group="policy",
        resolved_in="execlave.policy.loader",
    ),
    Option("base_url", "str | None", None, DEFAULT_BASE_URL, ("EXECLAVE_BASE_URL",)),
    Option("environment", "str | None", None, DEFAULT_ENVIRONMENT, ("EXECLAVE_ENVIRONMENT",)),
    Option(
        "service_name",
        "str | None",
        None,
        "execlave-app",
        ("OTEL_SERVICE_NAME",),
        group="telemetry",
        resolved_in=_TELEMETRY_CORE,
    ),
    Option(
        "tracer_provider",
        "TracerProvider | None",
        None,
        "the application's global provider if it set one, else execlave's own",
        group="telemetry",
        resolved_in=_TELEMETRY_CORE,
    ),
    Option(
        "meter_provider",
        "MeterProvider | None",
        None,
        "the application's global one; else, when execlave owns the tracing pipeline and sends to a "
        "collector, its own (exported there with the traces); else no-op",
        group="telemetry",
        resolved_in="execlave.telemetry.metrics",
    ),
    Option(
        "otlp_endpoint",
        "str | None",
        None,
        None,
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
        group="telemetry",
        resolved_in=_TELEMETRY_CORE,
    ),
    Option("console", "bool", False, False, group="telemetry"),
    Option(
        "capture_content",
        "bool | None",
        None,
        False,
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",),
        group="telemetry",
        resolved_in=_TELEMETRY_CONFIG,
    ),
    Option("enforcement_on_outage", "OutageMode", "fail_open", "fail_open"),
    Option("plan_limit_behavior", "OutageMode", "fail_open", "fail_open"),
    Option("request_timeout", "float", 5.0, 5.0),
    Option("decision_cache_ttl", "float", 60.0, 60.0),
    Option("approval_timeout", "float", 300.0, 300.0),
    Option("approval_poll_interval", "float", 5.0, 5.0),
    Option("status_poll_interval", "float", 15.0, 15.0),
    Option("heartbeat_interval", "float", 600.0, 600.0),
    Option(
        "execlave_otlp_endpoint",
        "str | None",
        None,
        None,
        ("EXECLAVE_OTLP_ENDPOINT",),
        resolved_in="execlave.connection.ingest",
    ),
)

BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}


def resolve(name: str, argument: object) -> object:
    """``argument`` unless it is ``None``; else the option's first non-empty environment variable
    (surrounding whitespace stripped); else its default. Only for options resolved here."""
    option = BY_NAME[name]
    if option.resolved_in != __name__:
        raise ValueError(f"{name} is resolved in {option.resolved_in}, not here")
    if argument is not None:
        return argument
    for variable in option.env:
        value = os.environ.get(variable, "").strip()
        if value:
            return value
    return option.default


@dataclass(frozen=True)
class ConnectionOptions:
    """The options of the connection to Execlave (used only with an API key), as one group:
    what :class:`execlave.connection.Connection` takes besides the key."""

    base_url: str
    environment: str
    enforcement_on_outage: OutageMode
    plan_limit_behavior: OutageMode
    request_timeout: float
    decision_cache_ttl: float
    approval_timeout: float
    approval_poll_interval: float
    status_poll_interval: float
    heartbeat_interval: float

    def timings(self) -> dict[str, float]:
        """The options measured in seconds, by name."""
        return {
            "request_timeout": self.request_timeout,
            "decision_cache_ttl": self.decision_cache_ttl,
            "approval_timeout": self.approval_timeout,
            "approval_poll_interval": self.approval_poll_interval,
            "status_poll_interval": self.status_poll_interval,
            "heartbeat_interval": self.heartbeat_interval,
        }
