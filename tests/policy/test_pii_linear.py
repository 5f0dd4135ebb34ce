"""The linear-time detectors find exactly what the previous per-candidate walks found
(``tests/support/pii_before.py``, a frozen copy): ``detect_pii``, ``find_pii``, ``mask_pii`` and
``mask_normalized`` on the adversarial corpus under every transform, on hostile shapes
(digit-and-space runs, IBAN-like runs) at moderate size, and on generated runs of card- and
IBAN-shaped chunks; each both with the whole-text card pass forced on and with the per-run walk
(the size that picks one is lowered to 0 or raised out of reach)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execlave.policy import pii
from execlave.policy.normalize import normalize_text
from execlave.policy.pii import PII_TYPES, detect_pii, find_pii, mask_normalized, mask_pii
from support import pii_before as before
from support.adversarial import INPUTS, TRANSFORMS

CORPUS = [TRANSFORMS[name](text) for texts in INPUTS.values() for text in texts for name in TRANSFORMS]
HOSTILE_UNITS = [
    "1 ", "1-", "1234 ", "0 ", "0000 ", "1 -1-- 1", "ab12 cd34 ", "de89 3704 ",
    "de89 3704 0044 0532 0130 00 ",
    "gb82 west 1234 5698 7654 32 ", "de00 0000 0000 0000 0000 00 ", "\u0661\u0662 ", "4111 1111 1111 1111 ",
    "\u00e94111111111111111\u00e9 ", "4111 1111 1111 1111\u00b7", "\u4e2d4111-1111-1111-1111 ?",
    "gr\u00fc\u00dfe 4111 1111 1111 1111 ", "\u00e9 de89 3704 0044 0532 0130 00 ",
]  # fmt: skip


def _same(text: str) -> None:
    view = normalize_text(text)
    assert detect_pii(view) == before.detect_pii(view), text[:200]
    for kind in PII_TYPES:
        assert detect_pii(view, [kind]) == before.detect_pii(view, [kind]), (kind, text[:200])
    assert find_pii(view) == before.find_pii(view), text[:200]
    assert mask_pii(text) == before.mask_pii(text), text[:200]
    assert mask_normalized(view) == before.mask_normalized(view), text[:200]
    third = len(view) // 3
    assert mask_normalized(view, third, 2 * third) == before.mask_normalized(view, third, 2 * third)


@pytest.fixture(params=["whole-text", "per-run"], autouse=True)
def card_pass(request, monkeypatch):
    """Run every test with each card path: the whole-text pass (even on short texts) and the
    per-run walk (even on long ones)."""
    monkeypatch.setattr(pii, "_WHOLE_TEXT_MIN", 0 if request.param == "whole-text" else 10**12)


@pytest.mark.parametrize("index", range(0, len(CORPUS), 50))
def test_corpus(index):
    for text in CORPUS[index : index + 50]:
        _same(text)


@pytest.mark.parametrize("unit", HOSTILE_UNITS)
@pytest.mark.parametrize("size", [100, 2_000, 20_000])
def test_hostile_shapes(unit, size):
    text = (unit * (size // len(unit) + 1))[:size]
    _same(text)
    _same("x " + text + " 4111 1111 1111 1111 de89 3704 0044 0532 0130 00")


_CHUNKS = st.sampled_from(
    [
        "de89", "3704", "0044", "0532", "0130", "00", "gb82", "west", "1234", "5698", "7654", "32",
        "4111", "1111", "1", "12", "123", "fr14", "2004", "1010", "0505", "0001", "3m02", "606",
        "ab12", "de00", "0000", "nl91", "abna", "0417", "1643", "00", "at61", "be68", "ch93", "no93",
        "mt84", "1904", "3000", "2350",
    ]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(_CHUNKS, st.sampled_from([" ", "", "-", "  "])), max_size=60))
def test_generated_runs(parts):
    _same("".join(chunk + sep for chunk, sep in parts))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text("0123456789", min_size=1, max_size=21), min_size=1, max_size=120),
    st.lists(st.sampled_from([" ", "-", "  ", "x"]), min_size=120, max_size=120),
)
def test_generated_digit_runs(groups, seps):
    _same("".join(g + s for g, s in zip(groups, seps, strict=False)))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                ["4111", "1111", "DE89", "3704", "0044", "0532", "0130", "00", "a@b.io", "10.0.0.1"]
            ),
            st.sampled_from(
                [
                    " ",
                    "",
                    "-",
                    "  ",
                    "\t",
                    "\n ",
                    "\x1c",
                    " \u00a0",
                    "\u00e9 ",
                    "\u00e9",
                    "\u00b7",
                    "\u4e2d",
                    "?",
                ]
            ),
        ),
        max_size=40,
    ),
    st.sampled_from(["", " ", "\t", "\n"]),
)
def test_generated_spacing(parts, edge):
    """Masking maps the view back to the original text under any spacing, case and edge
    whitespace (the aligned-view shortcut for plain ASCII text included)."""
    _same(edge + "".join(chunk + sep for chunk, sep in parts) + edge)
