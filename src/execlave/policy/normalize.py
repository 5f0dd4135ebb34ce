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
    *range(0xE0100, 0xE01F0),  # variation selectors supplement
    *range(0x180B, 0x1810),  # Mongolian free variation selectors, vowel separator
    *range(0xFFF9, 0xFFFC),  # interlinear annotation anchors
    *range(0x1D173, 0x1D17B),  # musical symbol formatting (invisible)
    0x2800,  # braille pattern blank
    *range(0xE0000, 0xE0080),  # tag characters
]
_REMOVE_INVISIBLE: dict[int, None] = dict.fromkeys(_INVISIBLE)
# str.translate costs ~50 ns a character; a character-class search is far cheaper, so translate
# only texts that actually contain something to translate.
_HAS_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u3164\ufeff\uffa0"
    "\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufe00-\ufe0f\U000e0000-\U000e007f"
    "\U000e0100-\U000e01ef\u180b-\u180f\ufff9-\ufffb\U0001d173-\U0001d17a\u2800]"
)
# Combining marks NFKC could not compose onto a letter (an overlay or dot inserted into a word, or
# the dot Turkish capital I leaves after case folding): removed, so they cannot split a word.
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")

# Lowercase Cyrillic and Greek letters that look like Latin ones (applied after case folding).
_CONFUSABLES = str.maketrans(
    {
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
    }
)  # fmt: skip

# Greek, Cyrillic, Armenian, Cherokee, IPA and phonetic blocks: where the look-alikes above live.
_CONFUSABLE_BLOCKS = (
    "\u0131\u0250-\u02af\u0370-\u03ff\u0400-\u052f\u0530-\u058f\u13a0-\u13ff\u1d00-\u1d7f\uab70-\uabbf"
)
_MAY_HAVE_CONFUSABLE = re.compile(f"[{_CONFUSABLE_BLOCKS}]")
_MAY_NEED_FOLDING = re.compile(f"[{_CONFUSABLE_BLOCKS}{_COMBINING.pattern[1:-1]}]")

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
        if "\u03f2" in text or "\u03f9" in text:  # lunate sigma looks like c; NFKC makes it a sigma
            text = text.replace("\u03f2", "c").replace("\u03f9", "c")
        folded = strip_invisible(text).casefold()
        if _MAY_NEED_FOLDING.search(folded):  # one scan for the common case: nothing to fold
            if _COMBINING.search(folded):
                folded = _COMBINING.sub("", folded)
            if _MAY_HAVE_CONFUSABLE.search(folded):
                folded = folded.translate(_CONFUSABLES)
    return " ".join(folded.split())
