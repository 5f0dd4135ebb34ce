"""The adversarial corpus (``tests/adversarial/data/*.yaml``) and its evasion transforms, shared by
the engine-level corpus test and the adapter-level runs in ``tests/hardening``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DATA", "FILLER", "INPUTS", "POLICIES_FILE", "TOOL_CASES", "TRANSFORMS", "input_cases"]

DATA = Path(__file__).resolve().parents[1] / "adversarial" / "data"
POLICIES_FILE = DATA / "policies.yaml"


def _load(pattern: str) -> list[Any]:
    """Every data file matching ``pattern``, in name order: the corpus grows by adding files."""
    return [yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted(DATA.glob(pattern))]


# inputs*.yaml: {kind: [text, ...]} (kinds merge across files); tool_calls*.yaml: [case, ...].
INPUTS: dict[str, list[str]] = {}
for _doc in _load("inputs*.yaml"):
    for _kind, _texts in _doc.items():
        INPUTS.setdefault(_kind, []).extend(_texts)
TOOL_CASES: list[dict[str, Any]] = [case for doc in _load("tool_calls*.yaml") for case in doc]
FILLER = "Routine status update for the payments service, nothing unusual to report. "

HOMOGLYPHS = str.maketrans({"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "i": "і", "x": "х"})


def zero_width(text: str) -> str:
    return "\u200b".join(text)


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def spacing_and_case(text: str) -> str:
    return "\t ".join(w.swapcase() if i % 2 else w.upper() for i, w in enumerate(text.split(" ")))


def buried(offset: int) -> Callable[[str], str]:
    def transform(text: str) -> str:
        return (FILLER * (offset // len(FILLER) + 1))[:offset] + text

    transform.__name__ = f"after_{offset}_chars"
    return transform


TRANSFORMS: dict[str, Callable[[str], str]] = {
    "plain": lambda t: t,
    "zero_width": zero_width,
    "fullwidth": fullwidth,
    "homoglyph": lambda t: t.translate(HOMOGLYPHS),
    "spacing_and_case": spacing_and_case,
    "soft_hyphen_and_nbsp": lambda t: t.replace(" ", "\u00a0").replace("e", "e\u00ad"),
    "combined": lambda t: zero_width(spacing_and_case(t).translate(HOMOGLYPHS)),
    "after_4000": buried(4_000),
    "after_100000": buried(100_000),
}

# Digits and key alphabets have no look-alikes in the fold table; secrets are tested with the
# transforms that apply to them.
_NOT_FOR_SECRETS = {"homoglyph", "combined", "spacing_and_case"}


def input_cases(transforms: list[str] | None = None) -> list[tuple[str, int, str, str]]:
    """``(kind, index, text, transform)`` for every corpus input under each applicable transform."""
    names = list(TRANSFORMS) if transforms is None else transforms
    return [
        (kind, i, text, name)
        for kind in ("injection", "secrets")
        for i, text in enumerate(INPUTS[kind])
        for name in names
        if not (kind == "secrets" and name in _NOT_FOR_SECRETS)
    ]


def expected_policy_type(kind: str) -> str:
    return "injection_scan" if kind == "injection" else "pii_access"
