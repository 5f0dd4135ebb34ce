"""Text normalisation applied before any pattern is matched.

Attackers split trigger phrases with zero-width characters, write them in fullwidth or
look-alike letters, or play with case and spacing. Everything the engine matches goes through
:func:`normalize_text` first, and the whole text is kept: nothing is ever truncated.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize_text", "strip_invisible"]

# Characters that render as nothing (or only steer layout) and are used to split trigger words.
_INVISIBLE = [
    *(0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x3164, 0xFEFF, 0xFFA0),
    *range(0x200B, 0x2010),  # zero-width space/non-joiner/joiner, LRM, RLM
    *range(0x202A, 0x202F),  # bidi embeddings and overrides
    *range(0x2060, 0x2070),  # word joiner, invisible operators, bidi isolates
    *range(0xFE00, 0xFE10),  # variation selectors
    *range(0xE0000, 0xE0080),  # tag characters
]
_REMOVE_INVISIBLE: dict[int, None] = dict.fromkeys(_INVISIBLE)
# str.translate costs ~50 ns a character; a character-class search is far cheaper, so translate
# only texts that actually contain something to translate.
_HAS_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u3164\ufeff\uffa0"
    "\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufe00-\ufe0f\U000e0000-\U000e007f]"
)

# Lowercase Cyrillic and Greek letters that look like Latin ones (applied after case folding).
_CONFUSABLES = str.maketrans(
    {
        "а": "a", "в": "b", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i", "ј": "j", "к": "k",
        "ӏ": "l", "м": "m", "н": "h", "о": "o", "р": "p", "ԛ": "q", "с": "c", "т": "t", "у": "y",
        "ѕ": "s", "ԁ": "d", "ԝ": "w", "х": "x", "ɑ": "a", "ɡ": "g", "ı": "i",
        "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
        "τ": "t", "υ": "u", "χ": "x", "ω": "w",
    }
)  # fmt: skip

# Greek, Cyrillic and IPA blocks (either case): where the look-alikes above live.
_MAY_HAVE_CONFUSABLE = re.compile("[\u0131\u0250-\u02af\u0370-\u03ff\u0400-\u052f]")

_ASCII_WHITESPACE_RUNS = ("  ", "\n", "\t", "\r", "\x0b", "\x0c")


def strip_invisible(text: str) -> str:
    """Remove invisible characters and apply NFKC (fullwidth and compatibility forms fold to
    their plain equivalents). Case and spacing are kept: this is what masking works on."""
    if text.isascii():
        return text
    if _HAS_INVISIBLE.search(text):
        text = text.translate(_REMOVE_INVISIBLE)
    return unicodedata.normalize("NFKC", text)


def normalize_text(text: str) -> str:
    """NFKC, invisible characters removed, common Cyrillic/Greek look-alikes folded to Latin,
    case folded, every run of whitespace collapsed to one space. The whole text is returned."""
    if text.isascii():
        folded = text.lower()
        if not any(run in folded for run in _ASCII_WHITESPACE_RUNS):
            return folded.strip()
    else:
        folded = strip_invisible(text).casefold()
        if _MAY_HAVE_CONFUSABLE.search(folded):
            folded = folded.translate(_CONFUSABLES)
    return " ".join(folded.split())
