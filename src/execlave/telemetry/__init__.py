"""execlave's OpenTelemetry layer: governed spans, the governance span processor, exporters,
bounded flush. Imports OpenTelemetry only (never AutoGen); see ``docs/telemetry.md``."""

from __future__ import annotations

from .config import TelemetryConfig, resolve_capture_content
from .core import Telemetry
from .governed import GovernedSpan
from .processors import SCOPE_NAME, BoundedBatchSpanProcessor, ConsoleTreeProcessor
from .span_processor import GovernanceSpanProcessor

__all__ = [
    "SCOPE_NAME",
    "BoundedBatchSpanProcessor",
    "ConsoleTreeProcessor",
    "GovernanceSpanProcessor",
    "GovernedSpan",
    "Telemetry",
    "TelemetryConfig",
    "resolve_capture_content",
]
