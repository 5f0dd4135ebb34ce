"""Loading policy sets from YAML / JSON files or in-memory lists, with errors that point at the
file, the policy and the field, and list every problem at once."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import ConfigIssue, PolicyConfigError
from .schema import POLICY_ADAPTER, POLICY_TYPES, Policy

__all__ = ["baseline_policies", "load_policies", "parse_policy_document"]

_IN_MEMORY = "<policies>"


def _field_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(policy)"


def _issues_from(exc: ValidationError, source: str, label: str) -> list[ConfigIssue]:
    issues = []
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        if loc and loc[0] in POLICY_TYPES:
            loc = loc[1:]  # the discriminator tag pydantic puts first
        kind = err["type"]
        if kind == "union_tag_invalid":
            field, message = (
                "policyType",
                (f"unknown policy type {err['ctx']['tag']!r}; expected one of {', '.join(POLICY_TYPES)}"),
            )
        elif kind == "union_tag_not_found":
            field, message = "policyType", f"missing; expected one of {', '.join(POLICY_TYPES)}"
        elif kind == "extra_forbidden":
            field, message = _field_path(loc), "unknown key (check the spelling against the policy reference)"
        else:
            field = _field_path(loc)
            message = err["msg"].removeprefix("Value error, ")
        issues.append(ConfigIssue(source, label, field, message))
    return issues


def policy_items(document: Any, source: str) -> Sequence[Any]:
    """The list of policies in a parsed document: a list, ``{"policies": [...]}`` or None (empty)."""
    if isinstance(document, Mapping) and "policies" in document:
        document = document["policies"]
    if document is None:
        return []
    if not isinstance(document, Sequence) or isinstance(document, (str, bytes)):
        raise PolicyConfigError.single(
            source, "-", "(document)", "expected a list of policies or a mapping with a 'policies' list"
        )
    return document


def parse_policy_document(document: Any, source: str) -> list[Policy]:
    """Validate an already-parsed document: a list of policies or ``{"policies": [...]}``."""
    document = policy_items(document, source)
    policies: list[Policy] = []
    issues: list[ConfigIssue] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(document):
        label = f"#{index}"
        if isinstance(item, Mapping) and isinstance(item.get("id"), str) and item["id"]:
            label = item["id"]
        if not isinstance(item, Mapping):
            got = type(item).__name__
            issues.append(ConfigIssue(source, label, "(policy)", f"expected a mapping, got {got}"))
            continue
        if label in seen:
            issues.append(ConfigIssue(source, label, "id", f"duplicate id (also policy #{seen[label]})"))
            continue
        if not label.startswith("#"):
            seen[label] = index
        try:
            policy = POLICY_ADAPTER.validate_python(item)
        except ValidationError as exc:
            issues.extend(_issues_from(exc, source, label))
            continue
        policies.append(policy)
    if issues:
        raise PolicyConfigError(issues)
    return policies


def _read(path: Path, source: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyConfigError.single(source, "-", "(file)", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyConfigError.single(source, "-", "(file)", f"cannot read: {exc}") from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise PolicyConfigError.single(source, "-", "(file)", f"not valid {kind}: {exc}") from None


def load_policies(
    source: str | os.PathLike[str] | Sequence[Mapping[str, Any]], *, source_name: str | None = None
) -> list[Policy]:
    """Load and validate policies from a YAML or JSON file (a list, or ``{"policies": [...]}``) or
    from a list of dicts. Raises :class:`~execlave.errors.PolicyConfigError` naming every problem:
    the file, the policy (``id``, else ``#index``) and the dotted field."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = source_name or str(path)
        return parse_policy_document(_read(path, name), name)
    return parse_policy_document(source, source_name or _IN_MEMORY)


def baseline_policies() -> list[Policy]:
    """The bundled baseline: common prompt-injection patterns and high-risk PII, in ``monitor``
    mode (violations are recorded on spans, nothing is blocked)."""
    text = resources.files(__package__).joinpath("baseline.yaml").read_text(encoding="utf-8")
    return parse_policy_document(yaml.safe_load(text), "execlave/policy/baseline.yaml")
