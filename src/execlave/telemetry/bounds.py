"""Bounds on what execlave writes into spans and onto a terminal.

Every text that can come from a model, a tool or an exception is masked (the PII masker, on the
whole text), has its control characters escaped, and is cut to a fixed length before it is
recorded. A text too long to mask cheaply is replaced by its length. See ``docs/telemetry.md``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from .._terminal import printable
from ..policy.normalize import strip_invisible
from ..policy.pii import mask_pii

Masker = Callable[[str], str]

MAX_NAME_CHARS = 128
"""A tool or agent name as exported (span names, ``gen_ai.tool.name``, violation ``toolName``)."""
MAX_MESSAGE_CHARS = 1024
"""A violation message, exception message or status description as exported."""
MAX_SCAN_CHARS = 64 * 1024
"""Longer texts are not exported at all (only their length): masking must see the whole text."""
MAX_STACK_CHARS = 4096
"""The innermost part of an exception's stack trace (frames only, never the message)."""
DEFAULT_ATTRIBUTE_LENGTH = 8192
"""Default cap on one attribute value (captured content, and every attribute on execlave's own provider)."""
TRUNCATED = "…[truncated]"
_LENGTH_ENV = ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT")


class SecretRedactingMasker:
    """A masker that first replaces one secret (the API key) with ``[EXECLAVE_API_KEY]``, so the
    secret leaves in no recorded text even when the app or a model puts it there. Its repr never
    shows the secret."""

    __slots__ = ("_masker", "_secret")
    MASK = "[EXECLAVE_API_KEY]"

    def __init__(self, masker: Masker, secret: str) -> None:
        secret = secret.strip()
        if not secret:
            raise ValueError("SecretRedactingMasker needs a non-empty secret")
        self._masker = masker
        self._secret = secret

    def __call__(self, text: str) -> str:
        if self._secret in text:
            text = text.replace(self._secret, self.MASK)
        return self._masker(text)

    def reveals(self, text: str) -> bool:
        """Whether ``text`` holds the secret."""
        return self._secret in text

    def __repr__(self) -> str:
        return f"SecretRedactingMasker({self._masker!r})"


def resolve_attribute_length(value: int | None) -> int:
    """Explicit value, else the standard OTel attribute length variables, else 8192."""
    if value is not None:
        if value < len(TRUNCATED) + 1:
            raise ValueError(f"max_attribute_length must be > {len(TRUNCATED)}, got {value}")
        return int(value)
    for name in _LENGTH_ENV:
        raw = os.environ.get(name, "").strip()
        if raw.isdigit() and int(raw) > len(TRUNCATED):
            return int(raw)
    return DEFAULT_ATTRIBUTE_LENGTH


def escape_controls(text: str) -> str:
    """Every non-printable character (C0/C1 controls, line and paragraph separators, bidi,
    zero-width and other format characters) written as its backslash escape, e.g. ``\\x1b``."""
    return printable(text)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(limit - len(TRUNCATED), 0)] + TRUNCATED


def _safe_str(value: object) -> str:
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def bound_text(text: object, limit: int = MAX_MESSAGE_CHARS, masker: Masker | None = None) -> str:
    """Mask the whole text, escape control characters, then cut to ``limit`` characters."""
    raw = _safe_str(text)
    if len(raw) <= _CACHED_CHARS:
        # Names repeat on every round: a small cache of short texts (at most
        # _CACHE_ENTRIES x _CACHED_CHARS characters) keeps masking off the per-round path.
        return _bound_short(raw, limit, masker or mask_pii)
    return _bound(raw, limit, masker or mask_pii)


def _bound(raw: str, limit: int, masker: Masker) -> str:
    if len(raw) > MAX_SCAN_CHARS:
        return f"[{len(raw)} characters omitted]"
    try:
        masked = masker(raw)
        if masked == strip_invisible(raw):
            # Nothing masked: keep the text as it came (fullwidth, zero-width and bidi characters
            # are evidence; the escaping below makes them visible instead of folding them away).
            masked = raw
    except Exception:
        return f"[{len(raw)} characters omitted]"
    return _cut(escape_controls(masked), limit)


_CACHED_CHARS = CACHED_CHARS = 256
"""Texts up to this length are bounded once (see :func:`bound_short`)."""
_CACHE_ENTRIES = 2048
_bound_short = bound_short = functools.lru_cache(maxsize=_CACHE_ENTRIES)(_bound)
"""``_bound(raw, limit, masker)`` for a str of at most :data:`CACHED_CHARS`, cached."""


def bound_name(name: object, masker: Masker | None = None) -> str:
    """A model-chosen name as exported: masked, escaped, at most :data:`MAX_NAME_CHARS`."""
    if type(name) is str and len(name) <= _CACHED_CHARS:  # the per-round case, straight to the cache
        return _bound_short(name, MAX_NAME_CHARS, masker or mask_pii)
    return bound_text(name, MAX_NAME_CHARS, masker)


def bound_span_name(name: str, masker: Masker | None = None) -> str:
    """``"{operation} {name}"`` with the operation kept and the name bounded like :func:`bound_name`."""
    if len(name) <= _CACHED_CHARS:
        return _span_name_short(name, masker)
    return _span_name(name, masker)


def _span_name(name: str, masker: Masker | None) -> str:
    operation, sep, rest = name.partition(" ")
    if not sep or len(operation) > 64:
        return bound_name(name, masker)
    return f"{escape_controls(operation)} {bound_name(rest, masker)}"


_span_name_short = functools.lru_cache(maxsize=_CACHE_ENTRIES)(_span_name)


def bound_violation(violation: Mapping[str, Any], masker: Masker | None = None) -> dict[str, Any]:
    """A copy of ``violation`` with ``toolName`` and every other string value bounded."""
    out: dict[str, Any] = {}
    for key, value in violation.items():
        if key == "toolName" and value is not None:
            out[key] = bound_name(value, masker)
        elif isinstance(value, str):
            out[key] = bound_text(value, MAX_MESSAGE_CHARS, masker)
        else:
            out[key] = value
    return out


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    module = getattr(cls, "__module__", "") or ""
    name = getattr(cls, "__qualname__", cls.__name__)
    return name if module in ("builtins", "") else f"{module}.{name}"


def exception_attributes(
    exc: BaseException, *, limit: int = MAX_MESSAGE_CHARS, masker: Masker | None = None
) -> dict[str, str]:
    """The OTel ``exception`` event attributes, bounded: the type, the masked bounded message and
    the innermost frames of the stack (file, line, code; the message is never repeated there)."""
    attrs = {
        "exception.type": escape_controls(_type_name(exc))[: MAX_NAME_CHARS * 2],
        "exception.message": bound_text(exc, limit, masker),
    }
    try:
        frames = "".join(traceback.format_tb(exc.__traceback__))
    except Exception:
        frames = ""
    if frames:
        tail = frames[-MAX_STACK_CHARS:]
        with contextlib.suppress(Exception):
            attrs["exception.stacktrace"] = (masker or mask_pii)(tail)
    return attrs


def status_text(exc: BaseException, masker: Masker | None = None) -> str:
    """``"{Type}: {masked, bounded message}"`` for a span's ERROR status."""
    return _cut(f"{type(exc).__name__}: {bound_text(exc, MAX_MESSAGE_CHARS, masker)}", MAX_MESSAGE_CHARS)
