"""The AG2 1.x privates the adapter touches (integrations/_compat_ag2.py), checked against the
installed release: a release that moves one fails here, naming it and the file to change. Runs on
every AG2 1.x line of the nox matrix (1.0.0, 1.2.1)."""

from __future__ import annotations

from typing import Any

from execlave.integrations import _compat_ag2 as compat

from .conftest import require_ag2

ag2 = require_ag2()

WHERE = "the AG2 adapter's privates live in src/execlave/integrations/_compat_ag2.py"


class Noop:
    def __init__(self, event: Any, context: Any, **options: Any) -> None:
        self.options = options


def test_an_agents_middleware_factories_are_a_list_of_class_and_options() -> None:
    agent = ag2.Agent("ops")
    middleware = compat.middleware_list(agent)
    assert middleware is not None, f"Agent.{compat.MIDDLEWARE} is no longer a list; {WHERE}"
    agent.add_middleware(ag2.Middleware(Noop, level=3))
    assert middleware is compat.middleware_list(agent), (
        f"Agent.{compat.MIDDLEWARE} is not the live list; {WHERE}"
    )
    assert compat.factory_parts(middleware[-1]) == (Noop, {"level": 3}), (
        f"Middleware.{compat.FACTORY_CLASS} / {compat.FACTORY_OPTIONS} moved; {WHERE}"
    )
