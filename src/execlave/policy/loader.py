"""Loading policy sets from YAML / JSON files or in-memory lists, with errors that point at the
file, the policy and the field, and list every problem at once.

Loading is bounded: only regular files of at most :data:`MAX_FILE_BYTES` are read (a FIFO or a
device is refused without blocking), a document may nest at most :data:`MAX_DEPTH` levels and
expand (YAML aliases repeat what they point to) to at most :data:`MAX_NODES` values and
:data:`MAX_TEXT_CHARS` characters of text. Every limit ends in a :class:`PolicyConfigError`.

An empty document (an empty or comment-only file, ``[]``, ``{"policies": []}``) is an error: it
would enforce nothing. To mean it, write ``{"policies": [], "allowEmpty": true}`` (in Python:
:data:`NO_POLICIES`).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import stat
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import ValidationError

from .._terminal import printable
from ..errors import ConfigIssue, PolicyConfigError
from .schema import (
    MAX_PROGRAM_SIZE,
    METADATA_KEYS,
    POLICY_ADAPTER,
    POLICY_KEYS,
    POLICY_TYPES,
    RULE_MODELS,
    Policy,
    program_budget,
)

MAX_FILE_BYTES = 1 << 20
"""Largest policy file read (1 MiB)."""
MAX_DEPTH = 64
"""Deepest nesting of lists and mappings in a policy document."""
MAX_NODES = 100_000
"""Most values (lists, mappings, keys, scalars) in a document once YAML aliases are expanded."""
MAX_TEXT_CHARS = 2 << 20
"""Most characters of text in a document once YAML aliases are expanded (2 MiB)."""
MAX_DOCUMENT_PROGRAM_SIZE = 5 * MAX_PROGRAM_SIZE
"""RE2 instructions all the patterns of one document may compile to, together."""

NO_POLICIES: Mapping[str, Any] = MappingProxyType({"policies": (), "allowEmpty": True})
"""An empty policy set on purpose: ``Execlave(policies=NO_POLICIES)`` enforces no local policy."""

PolicySource = str | os.PathLike[str] | Sequence[Mapping[str, Any] | Policy] | Mapping[str, Any]
"""A policy file (YAML or JSON), a list of policy dicts or :class:`~execlave.policy.schema.Policy`
objects, or a document mapping ``{"policies": [...], "allowEmpty": ...}``."""

_IN_MEMORY = "<policies>"
_DOCUMENT_KEYS = ("policies", "allowEmpty")
_EMPTY = (
    "no policies: an empty set would enforce nothing. To run without policies on purpose, "
    "write `policies: []` together with `allowEmpty: true` (in Python: "
    "policies=execlave.policy.NO_POLICIES)"
)
_RULE_KEYS: dict[str, tuple[str, ...]] = {
    policy_type: tuple(f.alias or name for name, f in rule.model_fields.items())
    for policy_type, rule in RULE_MODELS.items()
}


def _suggest(key: str, candidates: Sequence[str]) -> str | None:
    """The candidate ``key`` was probably meant to be: same word in another case style
    (``policy_type``, ``PolicyType`` -> ``policyType``), or a close spelling."""
    camel = re.sub(r"_+([a-zA-Z0-9])", lambda m: m.group(1).upper(), key)
    by_lower = {c.lower(): c for c in candidates}
    if camel.lower() in by_lower:
        return by_lower[camel.lower()]
    close = difflib.get_close_matches(camel.lower(), list(by_lower), n=1, cutoff=0.75)
    return by_lower[close[0]] if close else None


def _unknown_key(key: str, candidates: Sequence[str]) -> tuple[str, str | None]:
    hint = _suggest(key, candidates)
    if hint is not None:
        return f"unknown key; did you mean {hint!r}?", hint
    return f"unknown key; expected one of {', '.join(candidates)}", None


def _field_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return printable(path) or "(policy)"


def _issues_from(exc: ValidationError, source: str, label: str, policy_type: Any) -> list[ConfigIssue]:
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
            field = _field_path(loc)
            rule_keys = _RULE_KEYS.get(policy_type, ())
            if len(loc) == 2 and loc[0] == "ruleDefinition" and isinstance(loc[1], str) and rule_keys:
                message = _unknown_key(loc[1], rule_keys)[0]
            else:
                message = "unknown key (check the spelling against the policy reference)"
        else:
            field = _field_path(loc)
            message = printable(err["msg"].removeprefix("Value error, "))
        issues.append(ConfigIssue(source, label, field, message))
    return issues


def _check_shape(document: Any, source: str) -> None:
    """Bound the document as it will be used: depth, values and text, with YAML aliases (shared
    references) counted every time they appear. Iterative, and it stops at the first limit, so
    an alias bomb or a cyclic structure costs at most ``MAX_NODES`` steps."""
    nodes = chars = 0
    stack: list[tuple[Any, int]] = [(document, 1)]  # (value, nesting level of a container)
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise PolicyConfigError.single(
                source,
                "-",
                "(document)",
                f"expands to more than {MAX_NODES:,} values (YAML aliases repeat what they point "
                "to); write the policies out or split the file",
            )
        if isinstance(item, str):
            chars += len(item)
            if chars > MAX_TEXT_CHARS:
                raise PolicyConfigError.single(
                    source,
                    "-",
                    "(document)",
                    f"expands to more than {MAX_TEXT_CHARS >> 20} MiB of text (YAML aliases repeat "
                    "what they point to); write the policies out or split the file",
                )
            continue
        children: Any
        if isinstance(item, Mapping):
            children = [x for pair in item.items() for x in pair]
        elif isinstance(item, (list, tuple, set, frozenset)):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            raise PolicyConfigError.single(
                source, "-", "(document)", f"nested more than {MAX_DEPTH} levels deep"
            )
        stack.extend((child, depth + 1) for child in children)


def _document_items(document: Any, source: str) -> tuple[Sequence[Any], bool]:
    """The policies of a parsed document, and whether an empty set is allowed: a list, a mapping
    ``{"policies": [...], "allowEmpty": true}``, or None (an empty or comment-only file)."""
    if document is None:
        return [], False
    if isinstance(document, Mapping):
        if not any(k in document for k in _DOCUMENT_KEYS) and any(
            k in document for k in ("id", "policyType", "ruleDefinition")
        ):
            raise PolicyConfigError.single(
                source,
                "-",
                "(document)",
                "a single policy where a list is expected: put it in a list "
                "(`- id: ...` in YAML, `[{...}]` in JSON and Python) or under `policies:`",
            )
        issues = []
        for key in document:
            if key not in _DOCUMENT_KEYS:
                message, _ = _unknown_key(str(key), _DOCUMENT_KEYS)
                issues.append(ConfigIssue(source, "-", printable(key), message))
        allow_empty = document.get("allowEmpty", False)
        if not isinstance(allow_empty, bool):
            issues.append(ConfigIssue(source, "-", "allowEmpty", "expected true or false"))
        if "policies" not in document:
            issues.append(ConfigIssue(source, "-", "policies", "missing: the list of policies"))
        if issues:
            raise PolicyConfigError(issues)
        items = document["policies"]
        if items is None:
            return [], allow_empty is True
        document = items
    else:
        allow_empty = False
    if not isinstance(document, Sequence) or isinstance(document, (str, bytes, bytearray)):
        raise PolicyConfigError.single(
            source,
            "-",
            "(document)",
            f"expected a list of policies or a mapping with a 'policies' list; got {type(document).__name__}",
        )
    return document, allow_empty is True


def _policy_label(item: Any, index: int) -> str:
    if isinstance(item, Mapping) and isinstance(item.get("id"), str) and item["id"]:
        return printable(item["id"])
    return f"#{index}"


def _key_issues(item: Mapping[Any, Any], source: str, label: str) -> tuple[list[ConfigIssue], set[str]]:
    """Unknown top-level keys, each with a hint; and the keys the hints point at."""
    issues: list[ConfigIssue] = []
    meant: set[str] = set()
    for key in item:
        if key in POLICY_KEYS or key in METADATA_KEYS:
            continue
        message, hint = _unknown_key(str(key), POLICY_KEYS)
        if hint is not None:
            meant.add(hint)
            if hint != key and hint.lower() == re.sub(r"_", "", str(key)).lower():
                message += " (policy keys are camelCase)"
        issues.append(ConfigIssue(source, label, printable(key), message))
    return issues, meant


def parse_policy_document(document: Any, source: str, *, allow_empty: bool = False) -> list[Policy]:
    """Validate an already-parsed document: a list of policies or ``{"policies": [...]}``
    (with ``"allowEmpty": true`` if an empty set is meant; ``allow_empty=True`` is for callers
    whose empty set is not a mistake, e.g. the local part of a server's set)."""
    source = printable(source)
    _check_shape(document, source)
    items, document_allows_empty = _document_items(document, source)
    if not items and not (allow_empty or document_allows_empty):
        raise PolicyConfigError.single(source, "-", "(document)", _EMPTY)
    policies: list[Policy] = []
    issues: list[ConfigIssue] = []
    seen: dict[str, int] = {}
    fix = "simplify the patterns or split the policies over several files"
    with program_budget(MAX_DOCUMENT_PROGRAM_SIZE, "the policies of this document", fix):
        for index, item in enumerate(items):
            label = _policy_label(item, index)
            if not isinstance(item, Mapping):
                got = type(item).__name__
                issues.append(ConfigIssue(source, label, "(policy)", f"expected a mapping, got {got}"))
                continue
            if label in seen:
                issues.append(ConfigIssue(source, label, "id", f"duplicate id (also policy #{seen[label]})"))
                continue
            if not label.startswith("#"):
                seen[label] = index
            key_issues, meant = _key_issues(item, source, label)
            if key_issues:
                issues.extend(key_issues)
                item = {k: v for k, v in item.items() if k in POLICY_KEYS}
            try:
                policy = POLICY_ADAPTER.validate_python(item)
            except ValidationError as exc:
                found = _issues_from(exc, source, label, item.get("policyType"))
                # "policyType: missing" after "policy_type: did you mean 'policyType'?" says nothing new.
                issues.extend(i for i in found if i.field.split(".")[0].split("[")[0] not in meant)
                continue
            if not key_issues:
                policies.append(policy)
    if issues:
        raise PolicyConfigError(issues)
    return policies


_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML has it


class _TooBig(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _check_yaml_events(text: str) -> None:
    """Bound nesting and the number of values on the event stream, before anything is composed:
    the composer recurses once per level (a 20,000-deep document would exhaust the stack) and
    builds every node (a 1 MiB flow list is half a million of them)."""
    depth = nodes = 0
    loader = _YamlLoader(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                nodes += 1
                if depth > MAX_DEPTH:
                    raise _TooBig(f"nested more than {MAX_DEPTH} levels deep{_at(event.start_mark)}")
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
            elif isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent)):
                nodes += 1
            if nodes > MAX_NODES:
                raise _TooBig(f"more than {MAX_NODES:,} values{_at(event.start_mark)}; split the file")
    finally:
        loader.dispose()


def _at(mark: Any) -> str:
    """A position, never the text at it (a wrong file may hold credentials)."""
    if mark is None or getattr(mark, "line", None) is None:
        return ""
    return f" at line {mark.line + 1}, column {mark.column + 1}"


def _yaml_problem(problem: str | None) -> str:
    """PyYAML's problem text with anything quoted from the file (alias, tag and anchor names)
    replaced; token names (``'<scalar>'``) and single characters are kept."""
    if not problem:
        return "syntax error"

    def keep(match: re.Match[str]) -> str:
        inner = match.group(1)
        return match.group() if len(inner) <= 4 or re.fullmatch(r"<[a-z ]+>", inner) else "'…'"

    return printable(re.sub(r"'([^']*)'", keep, problem))


def _read_bytes(path: Path, source: str) -> bytes:
    """At most ``MAX_FILE_BYTES`` of a regular file. Opened non-blocking, so a FIFO cannot block
    and a device is refused before anything is read."""
    flags = (
        os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    )

    def fail(message: str) -> PolicyConfigError:
        return PolicyConfigError.single(source, "-", "(file)", message)

    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise fail("file not found") from None
    except IsADirectoryError:
        raise fail("not a regular file (a directory); give a .yaml or .json policy file") from None
    except OSError as exc:
        raise fail(f"cannot open: {exc.strerror or type(exc).__name__}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = (
                "a directory"
                if stat.S_ISDIR(mode)
                else "a FIFO"
                if stat.S_ISFIFO(mode)
                else "a device"
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a socket"
                if stat.S_ISSOCK(mode)
                else "not a file"
            )
            raise fail(f"not a regular file ({kind}); give a .yaml or .json policy file")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise fail(f"cannot read: {exc.strerror or type(exc).__name__}") from None
    finally:
        os.close(fd)
    if size > MAX_FILE_BYTES:
        raise fail(f"larger than {MAX_FILE_BYTES >> 20} MiB; a policy file is expected to be small")
    return b"".join(chunks)


def _read(path: Path, source: str) -> Any:
    data = _read_bytes(path, source)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PolicyConfigError.single(
            source, "-", "(file)", f"not UTF-8 text (invalid byte at offset {exc.start})"
        ) from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            message = f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        except RecursionError:
            message = f"nested more than {MAX_DEPTH} levels deep"
        raise PolicyConfigError.single(source, "-", "(file)", message) from None
    try:
        _check_yaml_events(text)
        return yaml.load(text, Loader=_YamlLoader)  # a safe loader: plain data, no !!python tags
    except _TooBig as exc:
        message = exc.message
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.problem and "nesting depth" in exc.problem:  # libyaml's own limit, met while scanning ahead
            message = f"nested more than {MAX_DEPTH} levels deep{_at(mark)}"
        else:
            message = f"not valid YAML: {_yaml_problem(exc.problem)}{_at(mark)}"
    except yaml.reader.ReaderError as exc:
        message = f"not valid YAML: a character YAML does not allow, at character {exc.position}"
    except yaml.YAMLError:
        message = "not valid YAML"
    raise PolicyConfigError.single(source, "-", "(file)", message) from None


def load_policies(
    source: str | os.PathLike[str] | Sequence[Any] | Mapping[str, Any], *, source_name: str | None = None
) -> list[Policy]:
    """Load and validate policies from a YAML or JSON file (a list, or ``{"policies": [...]}``),
    a list of dicts, or a document mapping. Raises :class:`~execlave.errors.PolicyConfigError`
    naming every problem: the file, the policy (``id``, else ``#index``) and the dotted field. An
    empty set is an error unless the document says ``allowEmpty: true``."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = printable(source_name or str(path))
        return parse_policy_document(_read(path, name), name)
    return parse_policy_document(source, source_name or _IN_MEMORY)


_SOURCE_TYPES = (
    "policies= takes a policy file path, a list of policies, or a document "
    "{'policies': [...], 'allowEmpty': ...}"
)


def resolve_policy_source(policies: PolicySource | None) -> list[Policy]:
    """What ``Execlave(policies=...)`` and ``reload_policies(...)`` enforce: ``None`` ->
    ``EXECLAVE_POLICY_FILE`` if set, else the bundled baseline; a path -> that file; a list of
    dicts and/or :class:`Policy` objects; a document mapping. Raises TypeError for anything else
    (a single policy mapping included: wrap it in a list) and PolicyConfigError for an invalid or
    empty set."""
    if policies is None:
        env_file = os.environ.get("EXECLAVE_POLICY_FILE")
        if env_file:
            return load_policies(env_file, source_name=f"{env_file} (from EXECLAVE_POLICY_FILE)")
        return baseline_policies()
    if isinstance(policies, (str, os.PathLike)):
        return load_policies(policies)
    if isinstance(policies, Policy):
        raise TypeError(f"{_SOURCE_TYPES}; got one Policy: pass a list, policies=[policy]")
    if isinstance(policies, Mapping):
        if any(k in policies for k in _DOCUMENT_KEYS):
            return load_policies(policies)
        raise TypeError(
            f"{_SOURCE_TYPES}; got a single policy mapping: pass a list of policies, "
            "policies=[{'id': ..., 'policyType': ..., ...}]"
        )
    if isinstance(policies, Sequence) and not isinstance(policies, (bytes, bytearray)):
        if policies and all(isinstance(p, Policy) for p in policies):
            return list(policies)  # type: ignore[arg-type]
        # A mixed list: validate the dicts (with their index in the list), re-check Policy objects.
        items = [p.model_dump(by_alias=True) if isinstance(p, Policy) else p for p in policies]
        return load_policies(items)
    raise TypeError(f"{_SOURCE_TYPES}; got {type(policies).__name__}")


def baseline_policies() -> list[Policy]:
    """The bundled baseline: common prompt-injection patterns and high-risk PII, in ``monitor``
    mode (violations are recorded on spans, nothing is blocked)."""
    text = resources.files(__package__).joinpath("baseline.yaml").read_text(encoding="utf-8")
    return parse_policy_document(yaml.safe_load(text), "execlave/policy/baseline.yaml")
