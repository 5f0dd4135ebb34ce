"""The fast normalisation (C-speed passes, per-distinct-character replacement) gives exactly what
a straightforward character-by-character implementation of the documented rules gives."""

from __future__ import annotations

import random
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from execlave.policy.normalize import (
    _BLANK_LETTERS,
    _CONFUSABLES,
    _WHITESPACE,
    _normalize_charmap,
    _normalize_per_char,
    normalize_text,
    normalize_utf8,
    strip_invisible,
)

_MINUS_SIGNS = {0x2212, 0x2796, 0xFE63, 0xFF0D}


def _removed(ch: str) -> bool:
    return unicodedata.category(ch) in ("Mn", "Me", "Cf") or ord(ch) in _BLANK_LETTERS


def _fold_char(ch: str) -> str:
    kind = unicodedata.category(ch)
    if _removed(ch):
        return ""
    if kind == "Cs":
        return "\ufffd"
    if kind == "Nd" and ord(ch) > 0x7F:
        return str(unicodedata.digit(ch))
    if (kind == "Pd" and ch != "-") or ord(ch) in _MINUS_SIGNS:
        return "-"
    return _CONFUSABLES.get(ch, ch)


def _fold_once(text: str) -> str:
    return "".join(_fold_char(ch) for ch in unicodedata.normalize("NFKD", text).casefold())


def reference_normalize(text: str) -> str:
    """NFKD, case fold, then each character removed or folded by category, once more if case
    folding left something to decompose, then whitespace collapsed."""
    text = text.replace("\u03f2", "c").replace("\u03f9", "c")
    folded = _fold_once(text)
    if not unicodedata.is_normalized("NFKD", folded):
        folded = _fold_once(folded)
    return " ".join(folded.split())


def reference_strip_invisible(text: str) -> str:
    return "".join(
        "\ufffd" if unicodedata.category(ch) == "Cs" else "" if _removed(ch) else ch
        for ch in unicodedata.normalize("NFKD", text)
    )


_INTERESTING = st.sampled_from(
    [
        "\u200b", "\u0301", "\u0345", "\u05b4", "\u0661", "\u0966", "\uff14", "\u2013", "\u2212",
        "\u00a0", "\u3000", "\u2028", "\u0085", "\u1680", "\x1c", "\t", "\n", "  ", "\u0130",
        "\u03f2", "\u1e9e", "\u01f0", "\uab70", "\u13a0", "\u0430", "\U0001d7ce", "\U000e0041",
        "\U0001f600", "\ud800", "\u115f", "\u1fbe", "\u0f73", "\u1d165", "ä", "ß", "Σ", "A", "z", "-",
    ]
)  # fmt: skip
_TEXTS = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec=None, exclude_categories=())),
    st.lists(st.one_of(_INTERESTING, st.text(max_size=3)), max_size=40).map("".join),
)


@settings(max_examples=3000, deadline=None)
@given(_TEXTS)
def test_normalize_text_equals_the_reference(text):
    expected = reference_normalize(text)
    assert normalize_text(text) == expected
    assert normalize_utf8(text) == (expected, expected.encode())


@settings(max_examples=1000, deadline=None)
@given(_TEXTS)
def test_strip_invisible_equals_the_reference(text):
    assert strip_invisible(text) == reference_strip_invisible(text)


def test_many_distinct_characters_to_fold_take_the_group_passes():
    marks = "".join("a" + chr(c) for c in range(0x300, 0x370))
    digits = "".join(chr(c) for c in range(0x660, 0x66A)) + "".join(chr(c) for c in range(0x966, 0x970))
    for text in (marks * 3, digits * 3 + " x", marks + "\U0001d7ce\U000e0041" * 30):
        assert normalize_text(text) == reference_normalize(text)


def test_whitespace_list_is_every_character_str_split_splits_on():
    assert set(_WHITESPACE + " ") == {chr(c) for c in range(0x110000) if chr(c).isspace()}


@settings(max_examples=3000, deadline=None)
@given(_TEXTS)
def test_each_fast_path_equals_the_reference_where_it_applies(text):
    """The per-character and one-byte-code paths, called directly (on any text they accept)."""
    expected = reference_normalize(text).encode()
    for path in (_normalize_per_char, _normalize_charmap):
        result = path(text)
        assert result is None or result == expected, path.__name__


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.one_of(_INTERESTING, st.characters(codec=None)), min_size=1, max_size=60),
    st.integers(0, 2**32),
)
def test_large_texts_of_few_kinds_equal_the_reference(alphabet, seed):
    """Texts past the sizes where peeling gives way to the one-byte-code path or the whole-text
    path (70,000 characters drawn from a small alphabet, plus ASCII words)."""
    rng = random.Random(seed)
    words = [*alphabet, "ab ", "Card 4111 ", "\u0345", "x"]
    text = "".join(rng.choice(words) for _ in range(30_000))
    assert normalize_text(text) == reference_normalize(text)
