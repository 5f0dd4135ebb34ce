"""Text normalisation applied before any pattern is matched.

Attackers split trigger phrases with zero-width characters or stray combining marks, write them
in fullwidth or look-alike letters, dress numbers in other scripts' digits and other dashes, or
play with case and spacing. Everything the engine matches goes through :func:`normalize_text`
first, and the whole text is kept: nothing is ever truncated.

Text is decomposed (NFKD), so accents come apart from their letters. What is then removed is
decided by Unicode category, not by a hand-kept list: every nonspacing and enclosing mark
(``Mn``, ``Me``) and every format character (``Cf``: zero-width characters, bidi controls, tags,
the shorthand and Egyptian format controls ...), plus the few letters that render as blank
(Hangul fillers, the braille blank). So ``ignoré`` compares as ``ignore``. No script keeps its
marks: Indic viramas and vowel signs, Hebrew points, Arabic harakat, ZWJ / ZWNJ are removed too,
and the same decomposition and removal are applied to the literal text of policy patterns (see
:func:`strip_pattern`), so a pattern written in any script still matches; in scripts whose marks
tell words apart the comparison is a little broader (``कि`` and ``की`` compare equal). Every
decimal digit (``Nd``: Arabic-Indic, Devanagari, fullwidth ...) becomes its ASCII digit and every
dash (``Pd`` and the minus sign) becomes ``-``, so numbers in Unicode dress meet the same
detectors as plain ones. Every step is a linear pass.
"""

from __future__ import annotations

import unicodedata
from functools import cache

# Letters that render as nothing (not in Mn/Me/Cf, but used the same way).
_BLANK_LETTERS = (0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800)
# Every Mn/Me/Cf/Nd/Pd code point lies in planes 0, 1 and 14 (planes 2-3 hold CJK ideographs,
# 4-13 are unassigned, 15-16 private use); tests/policy/test_normalize_pii.py checks this on the
# running Python's Unicode tables.
_SCANNED_PLANES = (range(0x20000), range(0xE0000, 0xE1000))

# Lowercase Cyrillic and Greek letters that look like Latin ones (applied after case folding).
_CONFUSABLES = {
    "а": "a", "в": "b", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i", "ј": "j", "к": "k",
    "ӏ": "l", "м": "m", "н": "h", "о": "o", "р": "p", "ԛ": "q", "с": "c", "т": "t", "у": "y",
    "ѕ": "s", "ԁ": "d", "ԝ": "w", "х": "x", "ɑ": "a", "ɡ": "g", "ı": "i",
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϳ": "j", "ɩ": "i",
    # Armenian
    "օ": "o", "ս": "u", "ց": "g", "հ": "h", "ո": "n", "զ": "q", "ա": "w", "ե": "t", "լ": "l",
    # Latin small capitals (phonetic extensions)
    "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ɢ": "g", "ʜ": "h", "ɪ": "i", "ᴊ": "j",
    "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r", "ᴛ": "t", "ᴜ": "u",
    "ᴠ": "v", "ᴡ": "w", "ᴢ": "z",
    # Cherokee letters that look Latin (case folding maps Cherokee to its capital forms)
    "Ꭺ": "a", "Ꮟ": "b", "Ꮯ": "c", "Ꭼ": "e", "Ꮐ": "g", "Ꮋ": "h", "Ꭵ": "i", "Ꭻ": "j", "Ꮶ": "k",
    "Ꮮ": "l", "Ꮇ": "m", "Ꮲ": "p", "Ꮪ": "s", "Ꭲ": "t", "Ꮩ": "v", "Ꮃ": "w", "Ꮓ": "z",
}  # fmt: skip


class _Tables:
    """Built once from the running Python's Unicode database (about 50 ms, on first non-ASCII text)."""

    def __init__(self) -> None:
        category = unicodedata.category
        removable: list[int] = list(_BLANK_LETTERS)
        digits: dict[int, str] = {}
        surrogates: list[int] = []
        dashes: list[int] = [0x2212, 0x2796, 0xFE63, 0xFF0D]  # minus signs (Sm) and compatibility dashes
        for plane in _SCANNED_PLANES:
            for code in plane:
                kind = category(chr(code))
                if kind in ("Mn", "Me", "Cf"):
                    removable.append(code)
                elif kind == "Nd" and code > 0x7F:
                    digits[code] = str(unicodedata.digit(chr(code)))
                elif kind == "Pd" and code != 0x2D:
                    dashes.append(code)
                elif kind == "Cs":  # a lone surrogate (from JSON "\\ud800") cannot be matched as UTF-8
                    surrogates.append(code)
        self.removals: dict[int, str | None] = dict.fromkeys(removable)
        self.removals.update(dict.fromkeys(surrogates, "\ufffd"))
        folds: dict[int, str | None] = dict(self.removals)
        folds.update(digits)
        folds.update(dict.fromkeys(dashes, "-"))
        folds.update({ord(k): v for k, v in _CONFUSABLES.items()})
        self.folds = folds


@cache
def _tables() -> _Tables:
    return _Tables()


_ASCII_WHITESPACE_RUNS = ("  ", "\n", "\t", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f")


_MANY = 32  # above this many distinct characters to fold, one translate pass beats str.replace each
_ASCII_BYTES = bytes(range(0x80))


def _non_ascii(text: str) -> set[str]:
    """The distinct non-ASCII characters of ``text``, with C-speed passes only: encoded, its
    ASCII bytes deleted, decoded again (a lone surrogate travels as itself)."""
    raw = text.encode("utf-8", "surrogatepass").translate(None, _ASCII_BYTES)
    return set(raw.decode("utf-8", "surrogatepass"))


def _fold(text: str, tables: _Tables) -> str:
    """Apply the fold table (removals, digits, dashes, look-alikes) in linear time: str.replace
    per distinct character to fold (a few, in prose), or one translate pass (many)."""
    folds = tables.folds
    found = [ch for ch in _non_ascii(text) if ord(ch) in folds]
    if not found:
        return text
    if len(found) > _MANY:
        return text.translate(folds)
    for ch in found:
        text = text.replace(ch, folds[ord(ch)] or "")
    return text


def strip_invisible(text: str) -> str:
    """NFKD (fullwidth and compatibility forms fold to their plain equivalents, accents come
    apart from their letters), then every combining mark and format character removed. Case
    and spacing are kept."""
    if text.isascii():
        return text
    removals = _tables().removals
    text = unicodedata.normalize("NFKD", text)
    return text.translate(removals) if any(ord(ch) in removals for ch in _non_ascii(text)) else text


def strip_pattern(pattern: str) -> str:
    """A policy pattern with its literal text brought to the form normalisation gives text:
    canonical decomposition (NFD) and the characters normalisation removes taken out, so a
    pattern written with accents or marks still matches (escapes such as ``\\u0301`` are left
    as written and then match nothing)."""
    if pattern.isascii():
        return pattern
    return unicodedata.normalize("NFD", pattern).translate(_tables().removals)


def fold_text(text: str) -> str:
    """:func:`normalize_text` without the whitespace collapsing (case folded, marks and format
    characters removed, digits, dashes and look-alikes folded)."""
    if text.isascii():
        return text.lower()
    if "\u03f2" in text or "\u03f9" in text:  # lunate sigma looks like c; NFKD makes it a sigma
        text = text.replace("\u03f2", "c").replace("\u03f9", "c")
    tables = _tables()
    base = unicodedata.normalize("NFKD", text).casefold()
    folded = _fold(base, tables)
    # Case folding can produce characters that decompose further: fold once more, so
    # normalising twice changes nothing.
    if not folded.isascii() and not unicodedata.is_normalized("NFKD", folded):
        folded = _fold(unicodedata.normalize("NFKD", folded).casefold(), tables)
    return folded


def normalize_text(text: str) -> str:
    """NFKD, marks and format characters removed, digits and dashes folded to ASCII, common
    Cyrillic/Greek look-alikes folded to Latin, case folded, every run of whitespace collapsed
    to one space. The whole text is returned."""
    folded = fold_text(text)
    if folded.isascii() and not any(run in folded for run in _ASCII_WHITESPACE_RUNS):
        return folded.strip()
    return " ".join(folded.split())
