"""Text shown on a terminal: control characters escaped, so file contents, policy ids and tool
names cannot move the cursor, clear the screen, retitle the window or write the clipboard."""

from __future__ import annotations

import re

__all__ = ["printable"]

# C0 and C1 controls (ESC, BEL, CR, ...), DEL, zero-width and bidirectional formatting characters,
# line / paragraph separators and the BOM.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``str(text)`` with every control or formatting character written as an escape (``\\x1b``)."""
    return _UNSAFE.sub(_escape, str(text))
