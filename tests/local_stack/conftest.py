"""Fixtures for the real local stack (collector + Jaeger v2 as processes on loopback).

Those tests run in the ``local_stack`` nox session, which sets ``EXECLAVE_LOCAL_STACK=1``; there a
missing Go or a failed build is an error. Elsewhere (the AutoGen matrix) they skip: building Go
binaries in every matrix cell would only repeat the same check. Artifacts (process logs, the
trace tree as text, the screenshot) go to ``EXECLAVE_STACK_ARTIFACTS`` or a pytest temp folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from infra import binaries


def _required() -> None:
    if os.environ.get("EXECLAVE_LOCAL_STACK") != "1":
        pytest.skip("the real collector/Jaeger tests run in `nox -s local_stack` (EXECLAVE_LOCAL_STACK=1)")


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("EXECLAVE_STACK_ARTIFACTS")
    path = Path(configured).resolve() if configured else tmp_path_factory.mktemp("local-stack")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def collector_bin() -> Path:
    _required()
    try:
        return binaries.collector()
    except binaries.BuildError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def jaeger_bin() -> Path:
    _required()
    try:
        return binaries.jaeger()
    except binaries.BuildError as exc:
        pytest.fail(str(exc), pytrace=False)
