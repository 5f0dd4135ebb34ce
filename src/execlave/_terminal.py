"""Text shown on a terminal: control characters escaped, so file contents, policy ids and tool
names cannot move the cursor, clear the screen, retitle the window or write the clipboard."""

from __future__ import annotations

__all__ = ["printable"]


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: object) -> str:
    """``str(text)`` with every character Python does not consider printable written as an escape
    (``\\x1b``): C0 and C1 controls (ESC, BEL, CR, ...), DEL, zero-width, bidirectional and other
    formatting characters (tag characters, soft hyphen, BOM), line / paragraph separators and
    spaces other than the ASCII space. One rule for the CLI, policy errors and exported spans."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in s)
