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

import codecs
import re
import unicodedata
from collections.abc import Iterable
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
        # Each character to fold, by its string (what a search finds), and one character class
        # holding them all (so a text's foldable characters are found at C speed).
        self.fold_strings: dict[str, str] = {chr(code): value or "" for code, value in folds.items()}
        self.removal_strings = {chr(code): value or "" for code, value in self.removals.items()}
        self.foldable = _finders(folds)
        self.removable = _finders(self.removals)
        # The same characters grouped by what they become: one pass per group replaces many
        # distinct characters at once (used when a text holds more than _PEELS of them).
        self.fold_groups = _groups(folds)
        self.removal_groups = _groups(self.removals)


def _groups(table: dict[int, str | None]) -> dict[str, tuple[re.Pattern[str], re.Pattern[str]]]:
    by_value: dict[str, list[int]] = {}
    for code, value in table.items():
        by_value.setdefault(value or "", []).append(code)
    return {value: _finders(codes) for value, codes in by_value.items()}


# Any character outside the Basic Multilingual Plane.
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _finders(codes: Iterable[int]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Patterns finding any of ``codes``: one for the BMP (a character class the ``re`` module
    checks with one table lookup per character) and one for the other planes (a class with
    astral ranges is checked range by range, so it runs only behind a one-range look-ahead and
    only on texts that hold an astral character)."""
    bmp = [code for code in codes if code < 0x10000]
    astral = [code for code in codes if code >= 0x10000]
    return re.compile(_char_class(bmp)), re.compile("(?=[\U00010000-\U0010ffff])" + _char_class(astral))


def _char_class(codes: Iterable[int]) -> str:
    """A regular-expression character class of ``codes`` (as ranges, in escapes); one that
    matches nothing if there are none."""
    ordered = sorted(codes)
    if not ordered:
        return "(?!)"
    ranges: list[list[int]] = []
    for code in ordered:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "[" + "".join(f"\\U{lo:08x}" + (f"-\\U{hi:08x}" if hi > lo else "") for lo, hi in ranges) + "]"


@cache
def _tables() -> _Tables:
    return _Tables()


# Every character str.split() splits on (tests/policy/test_normalize_pii.py checks the list
# against str.isspace on the running Python).
_WHITESPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
_WHITESPACE += "\u2028\u2029\u202f\u205f\u3000"
# What of it can be left after NFKD (which makes every other space a plain one).
_WHITESPACE_AFTER_NFKD = _WHITESPACE[:9] + "\x85\u1680\u2028\u2029"
_PEELS = 40  # distinct characters replaced one by one (removals: 8); then one pass per group
_REMOVAL_PEELS = 8


def _apply(
    text: str,
    finders: tuple[re.Pattern[str], re.Pattern[str]],
    values: dict[str, str],
    groups: dict[str, tuple[re.Pattern[str], re.Pattern[str]]],
) -> str:
    """``text`` with every character the finders find replaced by its value. Linear: each
    distinct character is replaced throughout with one ``str.replace`` (C speed; the search
    resumes where it stopped, since no value is itself one to replace), up to ``_PEELS`` of
    them; past that, every character of the found one's group (all that share its value) is
    replaced in one ``re`` pass, so a text costs at most one pass per group."""
    bmp, astral = finders
    for plane, found in enumerate((bmp, astral) if _ASTRAL.search(text) else (bmp,)):
        match = found.search(text)
        peels = 0
        while match is not None:
            pos = match.start()
            ch = match.group()
            value = values[ch]
            # Removals (marks, format characters) come in many kinds at once in some scripts:
            # past a few of them, the rest go in one pass.
            if peels < (_REMOVAL_PEELS if not value else _PEELS):
                text = text.replace(ch, value)
                peels += 1
            else:
                text = groups[value][plane].sub(value, text)  # values hold no backslash
            match = found.search(text, pos)
    return text


def _collapse(text: str, whitespace: str = _WHITESPACE) -> str:
    """``" ".join(text.split())`` (every run of whitespace one space, none at either end) with
    C-speed passes only: each whitespace character present becomes a space, then double spaces
    are halved until none is left (a run of n spaces takes log n passes)."""
    if text.isascii():
        for ch in _WHITESPACE[:9]:
            if ch in text:
                text = text.replace(ch, " ")
    else:
        for ch in whitespace:
            if ch in text:
                text = text.replace(ch, " ")
    while "  " in text:
        text = text.replace("  ", " ")
    return text.strip(" ")


def strip_invisible(text: str) -> str:
    """NFKD (fullwidth and compatibility forms fold to their plain equivalents, accents come
    apart from their letters), then every combining mark and format character removed. Case
    and spacing are kept."""
    if text.isascii():
        return text
    tables = _tables()
    text = unicodedata.normalize("NFKD", text)
    return _apply(text, tables.removable, tables.removal_strings, tables.removal_groups)


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
    folded = _apply(base, tables.foldable, tables.fold_strings, tables.fold_groups)
    # Case folding can produce characters that decompose further: fold once more, so
    # normalising twice changes nothing.
    if not folded.isascii() and not unicodedata.is_normalized("NFKD", folded):
        base = unicodedata.normalize("NFKD", folded).casefold()
        folded = _apply(base, tables.foldable, tables.fold_strings, tables.fold_groups)
    return folded


# -- per-character path --------------------------------------------------------------------------
#
# Decomposition, case folding and the fold table act character by character, except that NFKD
# puts runs of combining characters (canonical class > 0) in canonical order and a second round
# runs when case folding leaves something to decompose. A character is *context-free* when every
# combining character of its decomposition folds away and what it folds to is decomposed already
# and holds no combining character: then reordering moves only characters that vanish, no second
# round is triggered, and the text folds to the concatenation of its characters' folds (ASCII:
# lower case; U+0345 is the one exception allowed, see _char_fold). Texts whose non-ASCII
# characters are few and all context-free take this path: each distinct character is folded
# once (and remembered), then replaced throughout the text (or, for a large text of up to 128
# kinds, coded in one byte each: see _normalize_charmap). tests/policy/test_normalize_reference.py
# checks both against a plain per-character implementation of the rules.

_CHAR_FOLDS: dict[str, bytes | None] = {}
_CHAR_FOLDS_MAX = 4096  # remembered characters (cleared when full: memory stays bounded)
_PER_CHAR_DISTINCT = 256  # at most this many distinct non-ASCII characters per text
_ASCII_BYTES = bytes(range(0x80))
# ASCII letters lowered, ASCII whitespace made a space (collapsing treats all whitespace alike).
_ASCII_FOLD = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f", b"abcdefghijklmnopqrstuvwxyz" + b" " * 9
)


def _char_fold(ch: str) -> bytes | None:
    """The UTF-8 fold of one non-ASCII character, whitespace as spaces, if it is context-free."""
    try:
        return _CHAR_FOLDS[ch]
    except KeyError:
        pass
    tables = _tables()
    fold = tables.fold_strings
    decomposed = unicodedata.normalize("NFKD", "c" if ch in "\u03f2\u03f9" else ch)
    result: bytes | None = None
    # U+0345 (ypogegrammeni) is the one combining character context-free characters may keep:
    # it folds to "i", and every other combining character that survives folding makes its
    # character not context-free, so reordering only ever moves a U+0345 among removed
    # characters and other U+0345s.
    if all(
        unicodedata.combining(d) == 0
        or d == "\u0345"
        or not _apply(d.casefold(), tables.foldable, fold, tables.fold_groups)
        for d in decomposed
    ):
        folded = fold_text(ch)
        if unicodedata.is_normalized("NFKD", folded) and not any(map(unicodedata.combining, folded)):
            spaced = "".join(" " if c.isspace() else c for c in folded)
            result = spaced.encode("utf-8")
    if len(_CHAR_FOLDS) >= _CHAR_FOLDS_MAX:
        _CHAR_FOLDS.clear()
    _CHAR_FOLDS[ch] = result
    return result


_PEEL_DISTINCT = 16  # distinct characters found by peeling; more are found with one set()


_REPLACE_BUDGET = 1 << 23  # characters scanned by the per-kind replacements, at most
_SET_MAX_BYTES = 65_536  # non-ASCII bytes left after peeling that one set() may still take


def _distinct_utf8(others: bytes) -> list[bytes] | None:
    """The distinct characters of ``others`` (UTF-8 of non-ASCII characters only), each as
    UTF-8; None if there are more than ``_PER_CHAR_DISTINCT``, or too many to find cheaply. The
    first few are peeled off (the leading character's bytes, then every copy of them removed:
    C-speed passes over a shrinking buffer; fewer on a large buffer), the rest, if small, found
    with one set()."""
    found: list[bytes] = []
    peels = _PEEL_DISTINCT
    if len(others) > _SET_MAX_BYTES:
        # A large buffer is worth peeling only if its start already shows few kinds of character
        # (this only picks the path: the result is the same either way).
        if len(set(others[:4096].decode("utf-8", "ignore"))) > _PEEL_DISTINCT // 4:
            return None
        peels = _PEEL_DISTINCT // 2
    while others:
        if len(found) == peels:
            if len(others) > _SET_MAX_BYTES:
                return None
            rest = set(others.decode("utf-8", "surrogatepass"))
            if len(found) + len(rest) > _PER_CHAR_DISTINCT:
                return None
            return found + [ch.encode("utf-8", "surrogatepass") for ch in rest]
        lead = others[0]
        encoded = others[: 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4]
        found.append(encoded)
        others = others.replace(encoded, b"")
    return found


def _utf8_fold(encoded: bytes) -> bytes | None:
    """:func:`_char_fold` of one character given as UTF-8."""
    try:
        return _UTF8_FOLDS[encoded]
    except KeyError:
        pass
    folded = _char_fold(encoded.decode("utf-8", "surrogatepass"))
    if len(_UTF8_FOLDS) >= _CHAR_FOLDS_MAX:
        _UTF8_FOLDS.clear()
    _UTF8_FOLDS[encoded] = folded
    return folded


_UTF8_FOLDS: dict[bytes, bytes | None] = {}


_CHARMAP_SLOTS = 128  # non-ASCII characters a one-byte code can carry (the rest are ASCII)
_CHARMAP_RETRIES = 16  # characters added after the sample (each costs one more encoding pass)
_FILLERS = "".join(chr(0xE000 + i) for i in range(_CHARMAP_SLOTS))  # private use: fold to themselves


def _normalize_charmap(text: str) -> bytes | None:
    """The UTF-8 of :func:`normalize_text` for a text of ASCII plus at most 128 kinds of
    non-ASCII character, all context-free, in C-speed passes whatever their mix: each character
    is given a one-byte code (``codecs.charmap_encode``), codes whose fold is empty are deleted
    and ASCII is lowered in one ``bytes.translate``, and decoding gives each code its fold (a
    fold longer than one character is put in afterwards, per kind). The kinds come from the
    text's start; one the start lacks is added when encoding stops at it. None for any other
    text."""
    kinds = {ch for ch in text[:4096] if ch > "\x7f"}
    for _ in range(_CHARMAP_RETRIES):
        if len(kinds) > _CHARMAP_SLOTS:
            return None
        ordered = sorted(kinds)
        table = _ASCII_TABLE + "".join(ordered) + _FILLERS[len(ordered) :]
        try:
            coded = codecs.charmap_encode(text, "strict", codecs.charmap_build(table))[0]
        except UnicodeEncodeError as error:
            kinds.add(text[error.start])
            continue
        folds: list[bytes] = []
        for ch in ordered:
            folded = _char_fold(ch)
            if folded is None:
                return None
            folds.append(folded)
        removed = bytes(0x80 + i for i, folded in enumerate(folds) if not folded)
        single = [folded.decode("utf-8") for folded in folds]
        longer = [(ch, fold) for ch, fold in zip(ordered, single, strict=True) if len(fold) > 1]
        # Each code decodes to its fold when that is one character, else to the character itself
        # (replaced below; no fold holds a character that folds further).
        decoding = "".join(ch if len(f) != 1 else f for ch, f in zip(ordered, single, strict=True))
        decoding = _ASCII_TABLE + decoding + _FILLERS[len(ordered) :]
        result = codecs.charmap_decode(coded.translate(_ASCII_FOLD, removed), "strict", decoding)[0]
        for ch, fold in longer:
            result = result.replace(ch, fold)
        data = result.encode("utf-8")
        while b"  " in data:
            data = data.replace(b"  ", b" ")
        return data.strip(b" ")
    return None


_ASCII_TABLE = "".join(map(chr, range(0x80)))


def _normalize_per_char(text: str) -> bytes | None:
    """The UTF-8 of :func:`normalize_text` for a text with few non-ASCII characters, all
    context-free; None for any other text."""
    raw = text.encode("utf-8", "surrogatepass")
    others = raw.translate(None, _ASCII_BYTES)
    distinct = _distinct_utf8(others)
    if distinct is None or len(distinct) * len(text) > _REPLACE_BUDGET:
        return _normalize_charmap(text)
    changes = []
    for encoded in distinct:
        folded = _utf8_fold(encoded)
        if folded is None:
            return None
        if folded != encoded:
            changes.append((encoded, folded))
    if changes:  # str.replace of one character is a memchr-speed pass; bytes.replace is not
        for encoded, folded in changes:
            text = text.replace(encoded.decode("utf-8", "surrogatepass"), folded.decode("utf-8"))
        raw = text.encode("utf-8")
    data = raw.translate(_ASCII_FOLD)
    while b"  " in data:
        data = data.replace(b"  ", b" ")
    return data.strip(b" ")


def normalize_utf8(text: str) -> tuple[str, bytes]:
    """:func:`normalize_text` and its UTF-8 (what RE2 scans), each computed once."""
    if text.isascii():  # lower case and whitespace in one bytes pass
        data = text.encode().translate(_ASCII_FOLD)
        if b"  " in data:
            while b"  " in data:
                data = data.replace(b"  ", b" ")
        data = data.strip(b" ")
        return data.decode(), data
    fast = _normalize_per_char(text)
    if fast is not None:
        return fast.decode("utf-8"), fast
    folded = _collapse(fold_text(text), _WHITESPACE_AFTER_NFKD)
    return folded, folded.encode()


def normalize_text(text: str) -> str:
    """NFKD, marks and format characters removed, digits and dashes folded to ASCII, common
    Cyrillic/Greek look-alikes folded to Latin, case folded, every run of whitespace collapsed
    to one space. The whole text is returned."""
    if text.isascii():
        folded = text.lower()
        if (
            "  " in folded or "\n" in folded or "\t" in folded or "\r" in folded or "\x0b" in folded
            or "\x0c" in folded or "\x1c" in folded or "\x1d" in folded or "\x1e" in folded
            or "\x1f" in folded
        ):  # fmt: skip
            return _collapse(folded)
        return folded.strip()
    fast = _normalize_per_char(text)
    return fast.decode("utf-8") if fast is not None else _collapse(fold_text(text), _WHITESPACE_AFTER_NFKD)
