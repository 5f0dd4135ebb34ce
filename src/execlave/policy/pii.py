"""Detectors for personal data and secrets, shared by ``pii_access`` policies and content masking.

Each detector is an RE2 pattern (linear time) plus, where the format has one, a checksum that
rules out look-alike numbers: Luhn for card numbers, ISO 7064 mod-97 for IBANs, the SSA's
never-issued ranges for US social security numbers. Every detector runs on the normalised text
(:func:`~execlave.policy.normalize.normalize_text`: digits in any script and every dash folded
to ASCII, whitespace collapsed, look-alikes folded), and each type is searched on its own, so a
candidate of one type that fails its checksum never hides a value of another type next to it.

:func:`find_pii` is the one place spans are found: the engine's ``pii_access`` check and
:func:`mask_pii` both use it on the same normalised view, so anything that is detected is also
masked.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from itertools import accumulate, chain, compress, repeat
from operator import add, itemgetter
from typing import Any, Literal, get_args

import re2

from .normalize import fold_text, normalize_text

PiiType = Literal["email", "ssn", "credit_card", "phone", "iban", "ip_address", "secret"]
PII_TYPES: tuple[PiiType, ...] = get_args(PiiType)
Span = tuple[str, int, int]

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_PATTERNS: dict[PiiType, str] = {
    "email": r"[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}",
    "ssn": r"\b\d{3}[- ]\d{2}[- ]\d{4}\b",
    # A run of at least 13 digits, single spaces or dashes between them; the validator finds
    # the card among the run's separator-delimited groups (a card followed by a CVV or an
    # expiry, or preceded by other numbers).
    "credit_card": r"\d(?:[ -]?\d){12,}",
    "phone": r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\)[ .-]?|\b\d{3}[.-])\d{3}[ .-]\d{4}\b|\+\d{8,15}\b",
    # A run of 4-character groups after a country code and check digits; the validator tries
    # every sub-run of the groups.
    "iban": r"\b[a-z]{2}\d{2}(?: ?[a-z0-9]{4})+(?: ?[a-z0-9]{1,3})?\b",
    "ip_address": rf"\b{_OCTET}(?:\.{_OCTET}){{3}}\b|\b(?:[0-9a-f]{{1,4}}:){{7}}[0-9a-f]{{1,4}}\b",
    "secret": "|".join(
        [
            r"\b(?:akia|asia)[0-9a-z]{16}\b",  # AWS access key id (long-term / temporary)
            r"\baws_secret_access_key\s*[:=]\s*['\"]?[a-z0-9/+=]{40}",
            r"\bgh[pousr]_[a-z0-9]{36,}",  # GitHub tokens
            r"\bgithub_pat_[a-z0-9_]{40,}",
            r"\bxox[abprs]-[a-z0-9-]{10,}",  # Slack
            r"\bxapp-\d-[a-z0-9-]{10,}",  # Slack app-level token
            r"\bsk-(?:proj-|ant-)?[a-z0-9_-]{20,}",  # OpenAI / Anthropic style
            r"\b[sr]k_(?:live|test)_[a-z0-9]{16,}",  # Stripe
            r"\baiza[0-9a-z_-]{35}",  # Google API key
            r"\beyj[a-z0-9_-]{8,}\.eyj[a-z0-9_-]{8,}\.[a-z0-9_-]{8,}",  # JWT
            r"-----begin (?:rsa |ec |dsa |openssh |encrypted |pgp )?private key(?: block)?-----",
            r"\b(?:api[_-]?key|secret[_-]?key|access[_-]?token|auth[_-]?token|password|passwd)"
            r"\s*[:=]\s*['\"]?[a-z0-9_\-./+=]{12,}",
        ]
    ),
}

_DIGIT_VALUE = bytes.maketrans(b"0123456789", bytes(range(10)))
_DOUBLED_VALUE = bytes.maketrans(b"0123456789", bytes([0, 2, 4, 6, 8, 1, 3, 5, 7, 9]))


def luhn_valid(digits: str) -> bool:
    raw = digits.encode("ascii")
    return (
        sum(raw[::-1][::2].translate(_DIGIT_VALUE)) + sum(raw[::-1][1::2].translate(_DOUBLED_VALUE))
    ) % 10 == 0


# IBAN length per country (the ISO 13616 registry): a candidate is only tried at its country's
# length, so a run of IBAN-shaped words costs one checksum per word, not one per possible length.
_IBAN_LENGTHS: dict[str, int] = {
    "ad": 24, "ae": 23, "al": 28, "at": 20, "az": 28, "ba": 20, "be": 16, "bg": 22, "bh": 22, "bi": 27,
    "br": 29, "by": 28, "ch": 21, "cr": 22, "cy": 28, "cz": 24, "de": 22, "dj": 27, "dk": 18, "do": 28,
    "ee": 20, "eg": 29, "es": 24, "fi": 18, "fk": 18, "fo": 18, "fr": 27, "gb": 22, "ge": 22, "gi": 23,
    "gl": 18, "gr": 27, "gt": 28, "hn": 28, "hr": 21, "hu": 28, "ie": 22, "il": 23, "iq": 23, "is": 26,
    "it": 27, "jo": 30, "kw": 30, "kz": 20, "lb": 28, "lc": 32, "li": 21, "lt": 20, "lu": 20, "lv": 21,
    "ly": 25, "mc": 27, "md": 24, "me": 22, "mk": 19, "mn": 20, "mr": 27, "mt": 31, "mu": 30, "ni": 28,
    "nl": 18, "no": 15, "om": 23, "pk": 24, "pl": 28, "ps": 29, "pt": 25, "qa": 29, "ro": 24, "rs": 22,
    "ru": 33, "sa": 24, "sc": 31, "sd": 18, "se": 24, "si": 19, "sk": 24, "sm": 27, "so": 23, "st": 25,
    "sv": 28, "tl": 23, "tn": 24, "tr": 26, "ua": 29, "va": 22, "vg": 24, "xk": 20, "ye": 30,
}  # fmt: skip
_COUNTRY_DIGITS = {
    code: "".join(str(ord(ch) - 87) for ch in code) for code in _IBAN_LENGTHS
}  # "de" -> "1314"
_IBAN_START = re.compile(r"(?:^|(?<= ))(" + "|".join(_IBAN_LENGTHS) + r")\d\d")
_LETTER_VALUES = str.maketrans({chr(c): str(c - 55) for c in range(65, 91)})  # A=10 ... Z=35


def iban_valid(candidate: str) -> bool:
    s = candidate.replace(" ", "").upper()
    if not 15 <= len(s) <= 34 or not s.isalnum() or not s.isascii():
        return False
    return int((s[4:] + s[:4]).translate(_LETTER_VALUES)) % 97 == 1


def _ssn_ok(match: str) -> bool:
    area, group, serial = match[:3], match[4:6], match[7:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


_SEPARATORS = re.compile("[ -]")
_WORD = re.compile(r"\w")


def _card_spans(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Card numbers in the digit run ``text[start:end]``: every sequence of whole groups with
    13-19 digits passing Luhn. Linear: prefix sums make each window's Luhn test O(1), and a
    window never spans more than 19 digits."""
    run = text[start:end]
    # A group that touches a word character outside the run cannot start (or end) a card.
    first_ok = start == 0 or not _WORD.match(text[start - 1])
    last_ok = end == len(text) or not _WORD.match(text[end])
    if b"0" * 20 not in run.encode("ascii").translate(_MARKERS):  # the common case: one segment
        yield from _segment_cards(run, start, first_ok, last_ok)
        return
    # A group of more than 19 digits belongs to no card: it splits the run into segments.
    groups = _SEPARATORS.split(run)
    offset = 0
    segment: list[str] = []
    for index, group in enumerate(groups):
        if len(group) <= 19:
            if not segment:
                seg_start, seg_first_ok = offset, first_ok or index > 0
            segment.append(group)
        elif segment:
            yield from _segment_cards(run[seg_start : offset - 1], start + seg_start, seg_first_ok, True)
            segment = []
        offset += len(group) + 1
    if segment:
        yield from _segment_cards(run[seg_start:], start + seg_start, seg_first_ok, last_ok)


_NOT_MULTIPLE_OF_10 = bytes(0 if value % 10 == 0 else 1 for value in range(256))
_MULTIPLE_OF_10 = bytes(1 if value % 10 == 0 else 0 for value in range(256))
_NOT_GROUP_START = bytes.maketrans(b"02", b"\x01\x00")
_MARKERS = bytes.maketrans(b"0123456789 -", b"000000000011")
_VECTOR_MIN_GROUPS = 64


_CUT_AFTER_SEPARATOR = bytes.maketrans(b"\x00\x02", b"\x01\x00")  # in digit space: 2 = starts a group
_SEPARATOR_FLAGS = bytes.maketrans(b"0123456789 -", b"\x00" * 10 + b"\x01\x01")


# Pair counts built from two smaller ones (count: (a, b) means a pairs plus b pairs 2a lanes on):
# the 6-9 pairs of 12-19-digit windows from the powers of two.
_PAIR_PLAN: dict[int, tuple[int, int]] = {2: (1, 1), 4: (2, 2), 6: (4, 2), 7: (6, 1), 8: (4, 4), 9: (8, 1)}


def _any_card_window(run: str, digits: bytes, first_ok: bool, last_ok: bool) -> bool:
    """Whether any window of whole groups with 13-19 digits passes Luhn, decided with whole-buffer
    integer and bytes operations (no per-digit or per-group Python step), so a run costs a few
    passes over its bytes whatever its shape. A group of more than 19 digits can be in no window,
    so a run holding one needs no splitting.

    Each digit's Luhn contribution (doubled or not, by its offset in the window) is one byte lane
    of a big integer; adding shifted copies sums every L-digit window at once (at most
    19 x 9 = 171, so lanes never carry). A window counts where its sum is a multiple
    of 10 and both of its ends fall between groups; a length no two cuts are apart is skipped."""
    n = len(digits)
    # Per digit: 1 if the character before it is a separator (it starts a group), built in
    # character space (bit 0: is a separator, bit 1: the previous one is) with separators then
    # deleted, which leaves digit space.
    flags = int.from_bytes(run.encode("ascii").translate(_SEPARATOR_FLAGS), "little")
    marks = ((flags | (flags << 9)).to_bytes(len(run) + 2, "little")[: len(run)]).translate(None, b"\x01\x03")
    cut = bytes([first_ok]) + marks[1:].translate(_START_FLAG) + bytes([last_ok])
    cuts = int.from_bytes(cut, "little")  # lane j: 1 where a window may start or end before digit j
    luhn_zero = _luhn_zero_lanes(digits)
    for length in range(13, 20):
        count = n - length + 1
        if count <= 0:
            break
        both_cut = cuts & (cuts >> (8 * length))  # start and end are cuts (count lanes at most)
        if not both_cut:
            continue
        if luhn_zero(length) & both_cut:
            return True
    return False


def _luhn_zero_lanes(digits: bytes) -> Callable[[int], int]:
    """For a window length L, an integer whose byte lane j is 1 where the L digits from ``digits[j]``
    sum to a multiple of 10 under Luhn (lanes past the last whole window are meaningless)."""
    n = len(digits)
    plain = int.from_bytes(digits.translate(_DIGIT_VALUE), "little")
    doubled = int.from_bytes(digits.translate(_DOUBLED_VALUE), "little")
    # Luhn doubles every second digit counting back from a window's last one: in a window of L
    # digits, the digits at offsets of L's parity. So an even window is a run of (doubled, plain)
    # pairs and an odd one a run of (plain, doubled) pairs plus a plain last digit: sums of k
    # pairs by doubling (only those needed), each window's sum in its own lane.
    pairs = {0: {1: doubled + (plain >> 8)}, 1: {1: plain + (doubled >> 8)}}

    def pair_sums(kind: int, count: int) -> int:
        by_count = pairs[kind]
        if count not in by_count:
            a, b = _PAIR_PLAN[count]
            by_count[count] = pair_sums(kind, a) + (pair_sums(kind, b) >> (16 * a))
        return by_count[count]

    def zero(length: int) -> int:
        if length % 2 == 0:
            sums = pair_sums(0, length // 2)
        else:
            sums = pair_sums(1, length // 2) + (plain >> (8 * (length - 1)))
        return int.from_bytes(sums.to_bytes(n + 1, "little").translate(_MULTIPLE_OF_10), "little")

    return zero


# Whole-text card pass (ASCII text, one byte per character). Character classes: 0 a digit, 1 a
# separator (space or dash), 2 any other character that is not a word character, 3 a word
# character (a card may not touch one: ``_card_spans``' first_ok / last_ok).
_CARD_CLASS = bytes.maketrans(
    bytes(range(128)),
    bytes(
        0 if chr(b).isdigit() else 1 if chr(b) in " -" else 3 if chr(b).isalnum() or chr(b) == "_" else 2
        for b in range(128)
    ),
)
_IS_DIGIT = bytes.maketrans(bytes(range(128)), bytes(1 if chr(b).isdigit() else 0 for b in range(128)))
# Lane codes: bits 0-1 the character's class, bits 2-3 its neighbour's, bits 4-5 the next one's
# (before it for starts, after it for ends). Only digits' lanes are kept.
_NOT_DIGIT_CODE = bytes(code for code in range(64) if code & 3)
_OPENS = bytes(1 if (code >> 2) & 3 in (1, 2) else 0 for code in range(256))  # a window may start here
_BREAKS = bytes(  # the digit starts a new run (it is not one separator away from the previous digit)
    1 if (code >> 2) & 3 in (2, 3) or ((code >> 2) & 3 == 1 and (code >> 4) & 3 != 0) else 0
    for code in range(256)
)
_WHOLE_TEXT_MIN = 4096  # below this many characters the per-run walk is cheaper
_RUNS_BEFORE_WHOLE_TEXT = 16  # detection: runs checked one by one before the whole-text pass


class _CardLanes:
    """Every card window of a text (ASCII, one byte per character) at once: for each length L
    (13-19 digits), an integer whose byte lane j is 1 where the L digits from the text's j-th
    digit are a window the per-run walk of :func:`_card_spans` considers (whole groups of one
    candidate run, not touching a word character) and pass Luhn. Whole-buffer operations only,
    so the cost is a few passes over the text whatever its shape."""

    def __init__(self, data: bytes) -> None:
        n = len(data)
        self._size = n
        self._digit_flags = digit_flags = data.translate(_IS_DIGIT)
        self.count = count = n - digit_flags.count(0)
        self.valid: dict[int, int] = {}
        if count < 13:
            return
        classes = int.from_bytes(b"\x02\x02" + data.translate(_CARD_CLASS) + b"\x02\x02", "little")
        size = n + 4
        before = (classes | (classes << 10) | (classes << 20)).to_bytes(size + 3, "little")[:size]
        after = (classes | (classes >> 6) | (classes >> 12)).to_bytes(size, "little")
        before = before.translate(None, _NOT_DIGIT_CODE)
        after = after.translate(None, _NOT_DIGIT_CODE)
        opens = int.from_bytes(before.translate(_OPENS), "little")
        closes = int.from_bytes(after.translate(_OPENS), "little")  # a window may end after it
        breaks = int.from_bytes(before.translate(_BREAKS), "little")
        luhn_zero = _luhn_zero_lanes(data.translate(None, _NOT_DIGIT_BYTES))
        # crossing: lane j is 1 where a run starts at one of the digits j+1 .. j+L-1.
        one = breaks >> 8
        two = one | (one >> 8)
        four = two | (two >> 16)
        eight = four | (four >> 32)
        crossing = eight | (four >> 64)  # starts at j+1 .. j+12
        for length in range(13, 20):
            crossing |= breaks >> (8 * (length - 1))
            if length > count:
                break
            ends_ok = opens & (closes >> (8 * (length - 1)))
            if not ends_ok:
                continue
            valid = luhn_zero(length) & ends_ok & ~crossing
            if valid:
                self.valid[length] = valid

    def positions(self) -> list[int]:
        """The character offset of each digit."""
        return list(compress(range(self._size), self._digit_flags))

    def spans(self) -> list[Span]:
        """The spans :func:`_card_spans` yields (the longest window ending at each group end),
        sorted by start then end."""
        if not self.valid:
            return []
        count, positions = self.count, self.positions()
        found: list[Span] = []
        taken = 0
        lengths = 0
        for length in sorted(self.valid, reverse=True):
            last = self.valid[length] << (8 * (length - 1))  # lane: the window's last digit
            chosen = last & ~taken
            taken |= last
            if chosen:
                firsts = compress(positions, (chosen >> (8 * (length - 1))).to_bytes(count, "little"))
                lasts = map(add, compress(positions, chosen.to_bytes(count, "little")), repeat(1))
                found.extend(zip(repeat("credit_card"), firsts, lasts))
                lengths += 1
        if lengths > 1:  # each length's spans are in order already
            found.sort()
        return found

    def merged(self) -> list[Span]:
        """The spans of :meth:`spans` merged as :func:`_merged` merges them (overlapping spans, which
        share a digit, become one)."""
        if not self.valid:
            return []
        # smear: lane j is 1 where a window starts at j - (0 .. L - 13) for its length L.
        smear = 0
        for length in range(19, 12, -1):
            smear = smear | (smear << 8) | self.valid.get(length, 0)
        one = smear
        two = one | (one << 8)
        four = two | (two << 16)
        eight = four | (four << 32)
        joined = (eight | (four << 64)) << 8  # lane k: digits k-1 and k are in one window
        count, positions = self.count, self.positions()
        firsts = compress(positions, ((joined >> 8) & ~joined).to_bytes(count + 1, "little"))
        lasts = compress(positions, (joined & ~(joined >> 8)).to_bytes(count + 1, "little"))
        return [("credit_card", first, last + 1) for first, last in zip(firsts, lasts, strict=True)]


_NOT_DIGIT_BYTES = bytes(b for b in range(256) if not 0x30 <= b <= 0x39)


def _segment_cards(run: str, start: int, first_ok: bool, last_ok: bool) -> Iterator[tuple[int, int]]:
    """Cards in ``run`` (digit groups of at most 19 digits, one separator between groups)."""
    digits = run.encode("ascii").translate(None, b" -")
    if len(digits) < 13:
        return
    if len(run) - len(digits) >= _VECTOR_MIN_GROUPS and not _any_card_window(run, digits, first_ok, last_ok):
        return
    lengths = list(map(len, _SEPARATORS.split(run)))
    # Luhn doubles every second digit counting back from a window's last digit: for a window
    # ending before digit index b, the digits at indices of b's parity are doubled. One prefix
    # sum per parity gives every window's checksum as a difference.
    plain = digits.translate(_DIGIT_VALUE)
    doubled = digits.translate(_DOUBLED_VALUE)
    sums = []
    for parity in (0, 1):
        weights = bytearray(plain)
        weights[parity::2] = doubled[parity::2]
        sums.append([0, *(total % 10 for total in accumulate(weights))])
    cuts = [0, *accumulate(lengths)]  # digit index where each group starts (and the run ends)
    offsets = [0, *accumulate(n + 1 for n in lengths)]  # character offset of each group in run
    count = len(lengths)
    lo = 0
    for hi in range(1, count + 1):  # window = groups [lo, hi)
        if hi == count and not last_ok:
            break
        b = cuts[hi]
        while b - cuts[lo] > 19:
            lo += 1
        prefix = sums[b % 2]
        target = prefix[b]
        for i in range(lo, hi):
            a = cuts[i]
            if b - a < 13:
                break
            if i == 0 and not first_ok:
                continue
            if prefix[a] == target:
                yield start + offsets[i], start + offsets[hi] - 1
                break


_UNANCHORED = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)


def _raw_match(compiled: Any) -> Callable[..., Any] | None:
    """google-re2's internal ``Match(anchor, data, pos, endpos)`` of ``compiled`` when the
    installed release has it (no per-call wrapper objects), else None: callers then use the
    public API (the two give the same matches: tests/policy/test_re2_fallback.py)."""
    raw = getattr(compiled, "_regexp", None)
    if _UNANCHORED is None or raw is None:
        return None
    return getattr(raw, "Match", None)


def _byte_spans(compiled: Any, data: bytes) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each match of an RE2 pattern in ``data`` (bytes offsets), asked of RE2
    directly when the installed google-re2 allows it (no per-match wrapper objects)."""
    match = _raw_match(compiled)
    if match is None:
        for m in compiled.finditer(data):
            yield m.start(), m.end()
        return
    pos, end = 0, len(data)
    while pos <= end:
        start, stop = match(_UNANCHORED, data, pos, end)[0]
        if start < 0:
            return
        yield start, stop
        pos = stop if stop > start else stop + 1


def _typed_matches(name: str, compiled: Any, data: bytes) -> list[Span]:
    """``(name, start, end)`` for each match of ``compiled`` in ``data``: :func:`_byte_spans` in one
    loop (a text dense with values spends its time here)."""
    match = _raw_match(compiled)
    if match is None:
        return [(name, start, stop) for start, stop in _byte_spans(compiled, data)]
    found: list[Span] = []
    append = found.append
    pos, end = 0, len(data)
    while pos <= end:
        start, stop = match(_UNANCHORED, data, pos, end)[0]
        if start < 0:
            break
        append((name, start, stop))
        pos = stop if stop > start else stop + 1
    return found


def _latin1_options() -> re2.Options:
    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1
    options.log_errors = False
    return options


def _interleaved(code: str) -> str:
    """A pattern for a country code and two digits in the interleaved layout of
    :func:`_iban_ascii_starts` (each character followed by its flag byte; the first flag must be 1)."""
    return f"{code[0]}\\x01{code[1]}[\\x00\\x01][0-9][\\x00\\x01][0-9]"  # codes are two ASCII letters


# Country codes grouped by IBAN length: one pattern per length finding a chunk start with one of
# its codes and two digits (for the quick "which lengths occur at all" pass), and the same in the
# interleaved layout (for the per-length pass).
_IBAN_GROUPS: dict[int, list[str]] = {}
for _code, _length in _IBAN_LENGTHS.items():
    _IBAN_GROUPS.setdefault(_length, []).append(_code)
_IBAN_GROUP_LENGTHS = sorted(_IBAN_GROUPS)
_IBAN_GROUP_SET = re2.Set.SearchSet(_latin1_options())
for _length in _IBAN_GROUP_LENGTHS:
    _IBAN_GROUP_SET.Add(("(?:^| )(?:" + "|".join(_IBAN_GROUPS[_length]) + ")[0-9][0-9]").encode())
_IBAN_GROUP_SET.Compile()
_IBAN_INTERLEAVED = {
    length: re2.compile(("|".join(_interleaved(c) for c in codes)).encode("latin-1"), _latin1_options())
    for length, codes in _IBAN_GROUPS.items()
}
_IBAN_GROUP_PASSES = 4  # above this many lengths present, candidates are tried one by one
_SPACE_FLAG = bytes.maketrans(bytes(range(256)), bytes(1 if b == 0x20 else 0 for b in range(256)))
_START_FLAG = bytes.maketrans(b"\x00\x02", b"\x00\x01")
_IBAN_START_RE2 = re2.compile(r"(?:^| )(?:" + "|".join(_IBAN_LENGTHS) + r")\d\d")


def _iban_ascii_starts(run: str) -> list[tuple[int, str]] | None:
    """``(position, country code)`` of every chunk start of the ASCII ``run`` holding a registry
    code and two digits *and* followed, that code's length of non-space characters on, by a
    chunk boundary (a necessary condition of :func:`_iban_spans`), in run order; found with
    whole-buffer operations and one RE2 pass per IBAN length that occurs. None when too many
    lengths occur (the caller tries candidates one by one)."""
    data = run.encode()
    present = _IBAN_GROUP_SET.Match(data)
    if not present:
        return []
    if len(present) > _IBAN_GROUP_PASSES:
        return None
    # Per compact index (spaces removed): 1 where a chunk starts (or, at the end, the run ends).
    spaces = int.from_bytes(data.translate(_SPACE_FLAG), "little")
    after_space = ((spaces | (spaces << 9)).to_bytes(len(data) + 2, "little")[: len(data)]).translate(
        None, b"\x01\x03"
    )
    compact = data.translate(None, b" ")
    size = len(compact)
    bounds_bytes = b"\x01" + after_space[1:].translate(_START_FLAG) + b"\x01"
    bounds = int.from_bytes(bounds_bytes, "little")
    ones = int.from_bytes(b"\x01" * size, "little")
    wide = int.from_bytes(compact.decode("latin-1").encode("utf-16-le"), "little")
    found: list[tuple[int, str]] = []
    for index in present:
        length = _IBAN_GROUP_LENGTHS[index]
        valid = bounds & (bounds >> (8 * length)) & ones  # a chunk starts at c and ends at c + length
        if not valid:
            continue
        flags = int.from_bytes(valid.to_bytes(size, "little").decode("latin-1").encode("utf-16-le"), "little")
        layout = (wide | (flags << 8)).to_bytes(2 * size, "little")
        found.extend((start // 2, "") for start, _ in _byte_spans(_IBAN_INTERLEAVED[length], layout))
    found.sort()
    starts: list[tuple[int, str]] = []
    counted, skipped = 0, 0  # spaces before compact index c = chunk starts after a space up to c
    for c, _ in found:
        skipped += bounds_bytes.count(1, counted + 1, c + 1)
        counted = c
        pos = c + skipped
        starts.append((pos, run[pos : pos + 2]))
    return starts


_IBAN_SHORT_RUN = 200  # below this length the whole-buffer filter costs more than it saves


def _iban_starts(run: str) -> Iterator[tuple[int, str]]:
    """``(position, country code)`` of each chunk of ``run`` that starts with a registry country
    code and two digits, in run order (on ASCII runs, only those that end on a chunk boundary)."""
    if run.isascii() and len(run) >= _IBAN_SHORT_RUN:
        starts = _iban_ascii_starts(run)
        if starts is not None:
            yield from starts
            return
        data = run.encode()
        for start, _ in _byte_spans(_IBAN_START_RE2, data):
            if data[start] == 0x20:  # the space before the chunk
                start += 1
            yield start, run[start : start + 2]
        return
    for match in _IBAN_START.finditer(run):
        yield match.start(), match.group(1)


def _iban_spans(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """IBANs in the candidate ``text[start:end]``: every sub-run of its space-delimited chunks
    that starts with a registry country code and check digits, has that country's length and
    passes mod-97 (a short word after it, or a code-like word before it, does not hide it)."""
    run = text[start:end]
    floor = 0
    for pos, country in _iban_starts(run):
        if pos < floor:
            continue
        length = _IBAN_LENGTHS[country]
        window = run[pos : pos + length + length // 4 + 2]  # at most one space per 4 characters
        compact = window.replace(" ", "")
        if len(compact) < length:
            continue
        k = length  # the window index just after ``length`` non-space characters
        while window[:k].count(" ") + length != k:
            k = length + window[:k].count(" ")
        if pos + k < len(run) and run[pos + k] != " ":
            continue  # it must end between chunks
        bban = compact[4:length]
        if bban.isdigit():  # most countries: digits only, so one int() and no per-letter work
            if int(bban + _COUNTRY_DIGITS[country] + compact[2:4]) % 97 != 1:
                continue
        elif not iban_valid(compact[:length]):
            continue
        yield start + pos, start + pos + k
        floor = pos + k


def _options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    return options


_SINGLE: dict[str, Any] = {name: re2.compile(pattern, _options()) for name, pattern in _PATTERNS.items()}
# One combined pass answers the common question (is there any candidate at all?) in one scan.
_RUN_VALIDATORS: dict[str, Callable[[str, int, int], Iterator[tuple[int, int]]]] = {
    "credit_card": _card_spans,
    "iban": _iban_spans,
}
_MATCH_VALIDATORS: dict[str, Callable[[str], bool]] = {"ssn": _ssn_ok}
_MASKS: dict[str, str] = {name: f"[{name.upper()}]" for name in _PATTERNS}


def byte_matcher(compiled: Any) -> Callable[[bytes], bool]:
    """Whether ``compiled`` (an RE2 pattern) matches anywhere in UTF-8 ``data``: the question most
    checks end with (no match), asked of RE2 directly, without the wrapper's per-call generator,
    encoding and offset translation (the caller encodes each text once per request)."""
    match = _raw_match(compiled)
    if match is None:  # another google-re2 layout
        return lambda data: compiled.search(data) is not None
    anchor = _UNANCHORED

    def found(data: bytes) -> bool:
        return bool(match(anchor, data, 0, len(data))[0][0] >= 0)

    return found


def pii_alternation(types: frozenset[str]) -> str:
    """One pattern matching every candidate of ``types`` (empty if there are none)."""
    return "|".join(f"(?:{_PATTERNS[name]})" for name in PII_TYPES if name in types)


@cache
def any_pii_matcher(types: frozenset[str]) -> Callable[[bytes], bool]:
    """Whether any candidate of ``types`` is in UTF-8 ``data`` (one combined pass; a text with no
    candidate has no value of those types, checksums or not)."""
    alternation = pii_alternation(types)
    if not alternation:
        return lambda data: False
    return byte_matcher(re2.compile(alternation, _options()))


def _card_in_run(text: str, start: int, end: int) -> bool:
    """Whether :func:`_card_spans` finds a card in ``text[start:end]`` (without walking it)."""
    run = text[start:end]
    digits = run.encode("ascii").translate(None, b" -")
    if len(digits) < 13:
        return False
    if len(run) - len(digits) < _VECTOR_MIN_GROUPS:  # a short run: the exact walk is cheaper
        return next(_card_spans(text, start, end), None) is not None
    first_ok = start == 0 or not _WORD.match(text[start - 1])
    last_ok = end == len(text) or not _WORD.match(text[end])
    return _any_card_window(run, digits, first_ok, last_ok)


def _candidates(name: str, text: str, data: bytes) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each match of ``name``'s pattern in ``text``; on ASCII text read from its
    UTF-8 bytes ``data`` directly (same offsets, no offset translation by the wrapper)."""
    if len(data) != len(text):
        for m in _SINGLE[name].finditer(text):
            yield m.start(), m.end()
        return
    yield from _byte_spans(_SINGLE[name], data)


def _found(name: str, text: str, data: bytes) -> bool:
    """Whether :func:`_spans_of` yields anything."""
    if name == "credit_card":
        # Run by run (most texts have a few runs, often with a card in the first); past a few
        # runs, one whole-text pass for the rest.
        for index, (s, e) in enumerate(_candidates(name, text, data)):
            if index == _RUNS_BEFORE_WHOLE_TEXT and (cards := _whole_text_cards(text, data)) is not None:
                return bool(cards.valid)
            if _card_in_run(text, s, e):
                return True
        return False
    run_check = _RUN_VALIDATORS.get(name)
    match_check = _MATCH_VALIDATORS.get(name)
    for s, e in _candidates(name, text, data):
        if run_check is not None:
            if next(run_check(text, s, e), None) is not None:
                return True
        elif match_check is None or match_check(text[s:e]):
            return True
    return False


def _spans_of(name: str, text: str, data: bytes) -> Iterator[tuple[int, int]]:
    run_check = _RUN_VALIDATORS.get(name)
    match_check = _MATCH_VALIDATORS.get(name)
    for s, e in _candidates(name, text, data):
        if run_check is not None:
            yield from run_check(text, s, e)
        elif match_check is None or match_check(text[s:e]):
            yield s, e


_IS_QUESTION = bytes(1 if b == 0x3F else 0 for b in range(256))
_MARKED = re.compile(b"\xff")  # a "?" next to a digit, once marked (ASCII text has no 0xff byte)


def _whole_text_cards(text: str, data: bytes) -> _CardLanes | None:
    """The whole-text card pass for a large text (None: use the per-run walk).

    A non-ASCII text is read one byte per character, each non-ASCII character as "?"; only a
    character next to a digit can matter (whether it is a word character, which a card may not
    touch), so those are looked up and written back as a word or a non-word ASCII character."""
    if len(text) < _WHOLE_TEXT_MIN:
        return None
    if not any_pii_matcher(frozenset({"credit_card"}))(data):
        return _CardLanes(b"")
    if len(data) == len(text):
        return _CardLanes(data)
    chars = text.encode("ascii", "replace")
    n = len(chars)
    # The "?"s next to a digit, found with whole-buffer integer operations (a regex scan with a
    # look-behind tries every position) and marked 0xff ("?" + 0xc0) for one literal search.
    digits = int.from_bytes(chars.translate(_IS_DIGIT), "little")
    next_to_digit = int.from_bytes(chars.translate(_IS_QUESTION), "little") & ((digits << 8) | (digits >> 8))
    if not next_to_digit:
        return _CardLanes(chars)
    marked = (int.from_bytes(chars, "little") + next_to_digit * 0xC0).to_bytes(n + 1, "little")[:n]
    out = bytearray(chars)
    for match in _MARKED.finditer(marked):
        if text[match.start()].isalnum():  # a word character ("_" is ASCII, never read as "?")
            out[match.start()] = 0x61  # "a"; a non-word character stays "?" (same class as "!")
    return _CardLanes(bytes(out))


def _typed_spans(text: str, data: bytes, wanted: Iterable[str], merge_cards: bool) -> tuple[list[Span], bool]:
    """The spans of ``wanted`` types in ``text``, sorted by start (card spans already merged with
    each other when ``merge_cards``, which :func:`_merged` then treats the same), and whether
    they are known to be disjoint: all of one type, as a type's matches never overlap (card
    windows aside, unless merged)."""
    found: list[list[Span]] = []
    in_order = disjoint = True
    for name in PII_TYPES:
        if name not in wanted:
            continue
        if name == "credit_card" and (cards := _whole_text_cards(text, data)) is not None:
            spans = cards.merged() if merge_cards else cards.spans()  # sorted
            ordered_here, disjoint_here = True, merge_cards
        elif len(data) == len(text) and name not in _RUN_VALIDATORS and name not in _MATCH_VALIDATORS:
            spans = _typed_matches(name, _SINGLE[name], data)
            ordered_here = disjoint_here = True
        else:
            spans = [(name, s, e) for s, e in _spans_of(name, text, data)]
            ordered_here = disjoint_here = name != "credit_card"  # the per-run walk: by end
        if spans:
            found.append(spans)
            in_order, disjoint = ordered_here, disjoint_here
    if len(found) == 1 and in_order:
        return found[0], disjoint
    spans = [span for group in found for span in group]
    spans.sort(key=itemgetter(1))
    return spans, len(found) == 1 and disjoint


def find_pii(text: str, types: Iterable[str] = PII_TYPES) -> list[Span]:
    """Every ``(type, start, end)`` found in ``text`` (already normalised), sorted by start.
    Spans of different types may overlap."""
    if not text:
        return []
    data = text.encode()
    if not any_pii_matcher(frozenset(PII_TYPES))(data):
        return []
    return _typed_spans(text, data, set(types), merge_cards=False)[0]


def _merged_pii(text: str) -> list[Span]:
    """The merged spans of :func:`find_pii` (as :func:`_merged` merges them), without listing
    every card window of a large text."""
    if not text:
        return []
    data = text.encode()
    if not any_pii_matcher(frozenset(PII_TYPES))(data):
        return []
    spans, disjoint = _typed_spans(text, data, PII_TYPES, merge_cards=True)
    return spans if disjoint else _merged(spans)


def detect_pii(text: str, types: Iterable[str] = PII_TYPES) -> list[str]:
    """The PII types found in ``text`` (already normalised), in the order of ``PII_TYPES``."""
    if not text:
        return []
    wanted = frozenset(types)
    data = text.encode()
    if not any_pii_matcher(wanted)(data):
        return []
    return [name for name in PII_TYPES if name in wanted and _found(name, text, data)]


def _merged(spans: list[Span]) -> list[Span]:
    """Overlapping spans merged into one (named after the first)."""
    out: list[Span] = []
    for name, start, end in spans:
        if out and start < out[-1][2]:
            prev = out[-1]
            out[-1] = (prev[0], prev[1], max(prev[2], end))
        else:
            out.append((name, start, end))
    return out


def mask_normalized(text: str, lo: int = 0, hi: int | None = None) -> str:
    """``text[lo:hi]`` of an already normalised text, every value found in the *whole* text
    masked first (a value that crosses ``lo`` or ``hi`` is masked, never cut into a fragment)."""
    hi = len(text) if hi is None else hi
    out: list[str] = []
    pos = lo
    for name, start, end in _merged_pii(text):
        if end <= lo:
            continue
        if start >= hi:
            break
        out.append(text[pos:start] if start > pos else "")
        out.append(_MASKS[name])
        pos = end
    if pos < hi:
        out.append(text[pos:hi])
    return "".join(out)


# A token: a stretch of ASCII words with single spaces between them (their aligned view is the
# stretch lower-cased, each character at its own position), or else one whitespace-delimited word.
_ASCII_WORD = r"[\x00-\x08\x0e-\x1b\x21-\x7f]+"  # ASCII characters ``\s`` does not match
_TOKENS = re.compile(rf"{_ASCII_WORD}(?: {_ASCII_WORD})*(?!\S)|\S+")
_ASCII_RUNS = re.compile(r"[\x00-\x7f]+|[^\x00-\x7f]+")
_CHAR_FOLDS: dict[str, str] = {}


def _fold_char(ch: str) -> str:
    folded = _CHAR_FOLDS.get(ch)
    if folded is None:
        folded = fold_text(ch)
        if len(_CHAR_FOLDS) >= 4096:
            _CHAR_FOLDS.clear()
        _CHAR_FOLDS[ch] = folded
    return folded


class _ViewIndex:
    """The original position of each character of an aligned view, kept per piece (a piece maps
    either one to one, or every character to one original position: a folded character), so
    building it costs a step per piece, not per character; a position is read with a bisection."""

    __slots__ = ("origins", "steps", "views")

    def __init__(self) -> None:
        self.views: list[int] = []  # where each piece starts in the view
        self.origins: list[int] = []  # ... and in the original text
        self.steps: list[int] = []  # 1: one to one; 0: every character from ``origins[i]``

    def __getitem__(self, position: int) -> int:
        i = bisect_right(self.views, position) - 1
        return self.origins[i] + self.steps[i] * (position - self.views[i])


def _aligned_view(text: str) -> tuple[str, _ViewIndex]:
    """The normalised view built piece by piece, with the original position of each of its
    characters. Equal to ``normalize_text(text)`` except where normalisation composed characters
    across pieces (the caller checks)."""
    parts: list[str] = []
    index = _ViewIndex()
    views, origins, steps = index.views.append, index.origins.append, index.steps.append
    size = 0  # the view's length so far
    for token in _TOKENS.finditer(text):
        if parts:
            parts.append(" ")
            views(size), origins(token.start() - 1), steps(0)
            size += 1
        word, base = token.group(), token.start()
        if word.isascii():  # whole ASCII words, single spaces between them
            parts.append(word.lower())
            views(size), origins(base), steps(1)
            size += len(word)
            continue
        for piece in _ASCII_RUNS.finditer(word):
            chars, offset = piece.group(), base + piece.start()
            if chars.isascii():
                parts.append(chars.lower())
                views(size), origins(offset), steps(1)
                size += len(chars)
                continue
            for k, ch in enumerate(chars):
                folded = _fold_char(ch)
                if folded:
                    parts.append(folded)
                    views(size), origins(offset + k), steps(0)
                    size += len(folded)
    return "".join(parts), index


def mask_pii(text: str) -> str:
    """Replace every email, SSN, card number, phone, IBAN, IP address and secret with a typed
    mask such as ``[EMAIL]``.

    Values are found on the normalised view the detectors use (so whatever a ``pii_access``
    policy detects is masked, in any dress) and masked in the original text, which is otherwise
    returned as written. When the view cannot be mapped back character by character, the masked
    normalised view is returned instead. A mask can give a neighbour the word boundary it lacked
    (``a@b.io10.0.0.1``), so masking repeats until nothing is found."""
    for _ in range(4):
        view = normalize_text(text)
        spans = _merged_pii(view)
        if not spans:
            return text
        text = _mask_once(text, view, spans)
    return mask_normalized(normalize_text(text))


# ASCII whitespace other than the space (``str.split`` and ``\s`` treat these as spaces).
_OTHER_ASCII_SPACES = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"


def _mask_once(text: str, view: str, spans: list[Span]) -> str:
    if text.isascii():
        core = text.strip()
        if (
            view == core.lower()
            and "  " not in core
            and not any(space in core for space in _OTHER_ASCII_SPACES)
        ):
            # The aligned view is ``view``, each character at its own position after the leading
            # whitespace.
            return _masked(text, spans, None, len(text) - len(text.lstrip()))
    aligned, index = _aligned_view(text)
    if aligned != view:
        return mask_normalized(view)
    return _masked(text, spans, index)


def _masked(text: str, spans: list[Span], index: _ViewIndex | None, shift: int = 0) -> str:
    """``text`` with each span of the view masked (view positions mapped to ``text`` by ``index``,
    or else moved by ``shift``)."""
    if index is None and spans:  # merged spans are disjoint: cut between them at C speed
        starts: Iterable[int] = map(itemgetter(1), spans)
        ends: Iterable[int] = map(itemgetter(2), spans)
        if shift:
            starts, ends = map(add, starts, repeat(shift)), map(add, ends, repeat(shift))
        cuts = map(slice, chain((0,), ends), chain(starts, (None,)))
        masks = chain(map(_MASKS.__getitem__, map(itemgetter(0), spans)), ("",))
        return "".join(chain.from_iterable(zip(map(text.__getitem__, cuts), masks, strict=True)))
    out: list[str] = []
    pos = 0
    for name, start, end in spans:
        first, last = (start + shift, end + shift) if index is None else (index[start], index[end - 1] + 1)
        out.append(text[pos:first] if first > pos else "")
        out.append(_MASKS[name])
        pos = max(pos, last)
    out.append(text[pos:])
    return "".join(out)
