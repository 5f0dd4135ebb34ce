"""The engine asks RE2 for byte matches through google-re2's internal match call when the
installed release has it, and through the public API otherwise: both must find the same."""

from __future__ import annotations

from typing import Any

import pytest
import re2

from execlave.policy import pii


class _PublicOnly:
    """A compiled pattern that exposes only google-re2's public methods."""

    def __init__(self, compiled: Any) -> None:
        self._compiled = compiled

    def finditer(self, data: bytes) -> Any:
        return self._compiled.finditer(data)

    def search(self, data: bytes) -> Any:
        return self._compiled.search(data)


@pytest.mark.parametrize(
    "data",
    [b"", b"no digits here", b"card 4111 1111 1111 1111 and 5500-0000-0000-0004", b"aaa" * 1000 + b"1"],
)
@pytest.mark.parametrize("pattern", [rb"\d{4}", rb"a*", rb"1$", rb"x"])
def test_internal_and_public_paths_find_the_same_matches(pattern: bytes, data: bytes) -> None:
    compiled = re2.compile(pattern)
    fast = list(pii._byte_spans(compiled, data))
    public = list(pii._byte_spans(_PublicOnly(compiled), data))
    assert fast == public == [m.span() for m in compiled.finditer(data)]
    typed = pii._typed_matches("x", compiled, data)
    assert typed == pii._typed_matches("x", _PublicOnly(compiled), data) == [("x", s, e) for s, e in fast]
    assert pii.byte_matcher(compiled)(data) is pii.byte_matcher(_PublicOnly(compiled))(data)
    assert pii.byte_matcher(compiled)(data) is (compiled.search(data) is not None)
