"""execlave's OpenTelemetry layer: governed spans, the governance span processor, exporters,
bounded flush. Imports OpenTelemetry only (never AutoGen, httpx or the Execlave connection); see
``docs/telemetry.md``.

Internal: these names are for execlave's own modules (no ``__all__``; the public API is
``execlave``'s). ``Execlave.span_processor()`` hands out a ``GovernanceSpanProcessor``.
"""

from __future__ import annotations

from .config import TelemetryConfig as TelemetryConfig
from .config import resolve_capture_content as resolve_capture_content
from .core import Telemetry as Telemetry
from .governed import GovernedSpan as GovernedSpan
from .processors import SCOPE_NAME as SCOPE_NAME
from .processors import BoundedBatchSpanProcessor as BoundedBatchSpanProcessor
from .processors import ConsoleTreeProcessor as ConsoleTreeProcessor
from .span_processor import GovernanceSpanProcessor as GovernanceSpanProcessor
