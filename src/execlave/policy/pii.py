"""Detectors for personal data and secrets, shared by ``pii_access`` policies and content masking.

Each detector is an RE2 pattern (linear time) plus, where the format has one, a checksum that
rules out look-alike numbers: Luhn for card numbers, ISO 7064 mod-97 for IBANs, the SSA's
never-issued ranges for US social security numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal, get_args

import re2

from .normalize import strip_invisible

__all__ = ["PII_TYPES", "PiiType", "detect_pii", "iban_valid", "luhn_valid", "mask_pii"]

PiiType = Literal["email", "ssn", "credit_card", "phone", "iban", "ip_address", "secret"]
PII_TYPES: tuple[PiiType, ...] = get_args(PiiType)

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_PATTERNS: dict[PiiType, str] = {
    "email": r"[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}",
    "ssn": r"\b\d{3}[- ]\d{2}[- ]\d{4}\b",
    # Up to 40 digits, so a number followed by a CVV or an expiry is one match; the validator
    # finds the card among the separator-delimited groups.
    "credit_card": r"\b\d(?:[ -]?\d){12,39}\b",
    "phone": r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\)[ .-]?|\b\d{3}[.-])\d{3}[ .-]\d{4}\b|\+\d{8,15}\b",
    "iban": r"\b[a-z]{2}\d{2}(?: ?[a-z0-9]{4}){2,7}(?: ?[a-z0-9]{1,3})?\b",
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


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    s = candidate.replace(" ", "").upper()
    if not 15 <= len(s) <= 34:
        return False
    rearranged = s[4:] + s[:4]
    try:
        number = int("".join(str(int(ch, 36)) for ch in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


def _card_ok(match: str) -> bool:
    """The whole match, or a run of its separator-delimited groups (a card followed by a CVV or
    an expiry, or preceded by another number), is 13-19 digits passing Luhn."""
    groups = [g for g in match.replace("-", " ").split(" ") if g]
    for start in range(len(groups)):
        digits = ""
        for group in groups[start:]:
            digits += group
            if len(digits) > 19:
                break
            if len(digits) >= 13 and luhn_valid(digits):
                return True
    return False


def _iban_ok(match: str) -> bool:
    """The match, or the match without the trailing groups a following short word added."""
    groups = match.split(" ")
    return any(iban_valid(" ".join(groups[:end])) for end in range(len(groups), 0, -1))


def _ssn_ok(match: str) -> bool:
    area, group, serial = match[:3], match[4:6], match[7:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


_VALIDATORS: dict[str, Callable[[str], bool]] = {"credit_card": _card_ok, "ssn": _ssn_ok, "iban": _iban_ok}


def _options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    return options


# One combined pattern with a named group per type: a single linear-time pass finds them all.
_ALL = re2.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in _PATTERNS.items()), _options())
_SINGLE: dict[str, Any] = {name: re2.compile(pattern, _options()) for name, pattern in _PATTERNS.items()}
_MASKS: dict[str, str] = {name: f"[{name.upper()}]" for name in _PATTERNS}


def _matches(text: str, types: Iterable[str]) -> Iterable[tuple[str, int, int]]:
    wanted = set(types)
    if len(wanted) == 1:
        (name,) = wanted
        for m in _SINGLE[name].finditer(text):
            if (check := _VALIDATORS.get(name)) is None or check(m.group()):
                yield name, m.start(), m.end()
        return
    for m in _ALL.finditer(text):
        name = m.lastgroup
        if name is None or name not in wanted:
            continue
        if (check := _VALIDATORS.get(name)) is None or check(m.group()):
            yield name, m.start(), m.end()


def detect_pii(text: str, types: Iterable[str] = PII_TYPES) -> list[str]:
    """The PII types found in ``text`` (already normalised), in the order of ``PII_TYPES``."""
    found = {name for name, _, _ in _matches(text, types)}
    return [t for t in PII_TYPES if t in found]


def mask_pii(text: str) -> str:
    """Replace every detected email, SSN, card number, phone, IBAN, IP address and secret with a
    typed mask such as ``[EMAIL]``. Invisible characters are removed first so they cannot hide a value."""
    clean = strip_invisible(text)
    spans = list(_matches(clean, PII_TYPES))
    if not spans:
        return clean
    out, pos = [], 0
    for name, start, end in spans:
        out.append(clean[pos:start])
        out.append(_MASKS[name])
        pos = end
    out.append(clean[pos:])
    return "".join(out)
