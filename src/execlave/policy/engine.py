"""The policy engine: policies compiled once into an immutable plan, evaluated per request.

``evaluate`` is safe to call from any number of threads. The plan is replaced as a whole on
``reload`` (a single reference assignment), so a request sees either the old set or the new
one, never a mix. Only rate-limit windows and the kill switch are mutable: the windows are
updated under a lock; the kill switch is a dict whose single set, pop and lookup are atomic.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import re2

from ..errors import AgentPausedError
from .normalize import normalize_utf8, strip_invisible, strip_pattern
from .pii import any_pii_matcher, byte_matcher, detect_pii, mask_normalized, mask_pii, pii_alternation
from .schema import (
    RULE_MODELS,
    InjectionScanPolicy,
    InjectionScanRule,
    PiiAccessPolicy,
    PiiAccessRule,
    Policy,
    RateLimitPolicy,
    RateLimitRule,
    ToolInvocationPolicy,
    ToolInvocationRule,
    compile_pattern,
)
from .types import CheckRequest, Decision, Outcome, ToolCall, ToolOutput, Violation

_EXCERPT_CHARS = 80
# A JSON escape: a surrogate pair, one \uXXXX, or a one-letter escape.
_JSON_ESCAPE = re.compile(
    r"\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})|\\u([0-9a-fA-F]{4})|\\([\"\\/bfnrt])"
)
_SHORT_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "/": "/"}


def _unescape(match: re.Match[str]) -> str:
    high, low, single, short = match.groups()
    if high is not None:
        return chr(0x10000 + ((int(high, 16) - 0xD800) << 10) + (int(low, 16) - 0xDC00))
    if single is not None:
        return chr(int(single, 16))
    return _SHORT_ESCAPES[short]


def normalize_tool_name(name: str) -> str:
    """Tool names compare after NFKD, removal of marks and format characters, case folding and trimming
    (``" Delete_File"``, ``"ｄｅｌｅｔｅ_file"`` and ``"dele\u200bte_file"`` are all ``delete_file``)."""
    return strip_invisible(name).casefold().strip()


def _glob_to_re2(glob: str) -> str:
    """Translate a shell-style glob (``*``, ``?``, ``[abc]``, ``[!abc]``) to an RE2 pattern."""
    out, i, n = [], 0, len(glob)
    while i < n:
        ch = glob[i]
        i += 1
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            end = glob.find("]", i + 1 if i < n and glob[i] in "!^" else i)
            if end < 0 or end == i:
                out.append(re2.escape("["))
                continue
            body = glob[i:end]
            i = end + 1
            negate = body[0] in "!^"
            body = body[1:] if negate else body
            escaped = "".join("\\" + c if c in "\\]^[" else c for c in body)
            out.append(f"[{'^' if negate else ''}{escaped}]")
        else:
            out.append(re2.escape(ch))
    return "".join(out)


def _compile_globs(globs: Sequence[str]) -> re2._Regexp | None:
    if not globs:
        return None
    alternation = "|".join(f"(?:{_glob_to_re2(normalize_tool_name(g))})" for g in globs)
    return compile_pattern(f"^(?s:{alternation})$")  # (?s): a newline in a name is no way around ``*``


def _excerpt(text: str, start: int, end: int) -> str:
    """The normalised text around a match, PII masked over the whole text *before* the window is
    cut (a value on the window's edge is masked whole, never left as a fragment)."""
    lo = max(0, start - 10)
    hi = min(len(text), max(end, start + _EXCERPT_CHARS - 20) + 10)
    masked = mask_normalized(text, lo, hi)
    return ("…" if lo else "") + masked[:_EXCERPT_CHARS] + ("…" if hi < len(text) else "")


def _shown_name(name: str) -> str:
    """A tool name as violations show it: PII in it masked (the name is model-chosen text;
    underscores read as spaces, as the ``pii_access`` check reads them)."""
    if not name:
        return name
    masked = mask_pii(name.replace("_", " "))
    return name if masked == name.replace("_", " ") else masked


def _with_decoded_escapes(text: str) -> str:
    """``text``, followed by a copy with its JSON escapes (``\\uXXXX``, ``\\t`` ...) decoded when it has any:
    unparsed JSON (malformed tool arguments, a ``FunctionCall``'s arguments carried as text, a
    tool's JSON result) reaches a tool or a model that reads ``"\\u0661"`` as the digit."""
    if "\\" not in text:
        return text
    decoded = _JSON_ESCAPE.sub(_unescape, text)
    return text if decoded == text else text + "\n" + decoded


def _argument_text(arguments: Any) -> str:
    """Every string, key and scalar in (possibly deeply nested) arguments, one per line.
    Iterative, so hostile nesting depth cannot overflow the stack; each container is visited
    once, so a self-referencing (cyclic) structure is scanned in full and the walk ends."""
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return _with_decoded_escapes(arguments)
    if type(arguments) is dict:  # the common shape: flat, string values (same text as the walk)
        values = list(arguments.values())
        for value in values:
            if type(value) is not str:
                break
        else:
            values.reverse()
            return "\n".join([*map(str, arguments), *values])
    parts: list[str] = []
    stack: list[Any] = [arguments]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if isinstance(item, (dict, list, tuple, set, frozenset)):
            if id(item) in seen:
                continue
            seen.add(id(item))
        if isinstance(item, dict):
            for key, value in item.items():
                parts.append(str(key))
                stack.append(value)
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif isinstance(item, (str, int, float, bool)) or item is None:
            parts.append(str(item))
        else:
            try:
                parts.append(json.dumps(item, default=str))
            except (TypeError, ValueError, RecursionError):
                parts.append(str(type(item).__name__))
    return "\n".join(parts)


class _Texts:
    """Normalised views of a request (each also as UTF-8, what the scans read), computed at most
    once per evaluation."""

    __slots__ = ("_args", "_input", "_input_utf8", "_names", "_outputs", "_request", "input_clear")

    def __init__(self, request: CheckRequest, screen: Callable[[bytes], bool] | None = None) -> None:
        self._request = request
        self._input: str | None = None
        self._input_utf8 = b""
        # True when one combined scan of every input check's patterns found nothing (so no input
        # check can find anything either); False when there is no such scan or it found something.
        self.input_clear = False
        if screen is not None and request.input:
            self._normalize_input()
            self.input_clear = not screen(self._input_utf8)
        self._outputs: list[tuple[ToolOutput, str, bytes]] | None = None
        self._args: list[tuple[ToolCall, str, bytes]] | None = None
        self._names: list[tuple[str, bytes]] | None = None

    def _normalize_input(self) -> None:
        raw = self._request.input
        if raw:
            self._input, self._input_utf8 = normalize_utf8(_with_decoded_escapes(raw))
        else:
            self._input = ""

    @property
    def input(self) -> str:
        if self._input is None:
            self._normalize_input()
        return self._input  # type: ignore[return-value]

    @property
    def input_utf8(self) -> bytes:
        if self._input is None:
            self._normalize_input()
        return self._input_utf8

    @property
    def outputs(self) -> list[tuple[ToolOutput, str, bytes]]:
        if self._outputs is None:
            self._outputs = []
            for o in self._request.tool_outputs:
                if o.content:
                    self._outputs.append((o, *normalize_utf8(_with_decoded_escapes(o.content))))
        return self._outputs

    @property
    def arguments(self) -> list[tuple[ToolCall, str, bytes]]:
        if self._args is None:
            self._args = []
            for c in self._request.tool_calls:
                self._args.append((c, *normalize_utf8(_argument_text(c.arguments))))
        return self._args

    @property
    def names(self) -> list[tuple[str, bytes]]:
        """Each tool call's name as the ``pii_access`` check reads it (underscores as spaces)."""
        if self._names is None:
            self._names = []
            for c in self._request.tool_calls:
                self._names.append(normalize_utf8(c.name.replace("_", " ")) if c.name else ("", b""))
        return self._names


class _Compiled:
    """A compiled policy: knows how to add its violations for a request."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.id = policy.id
        self.mode = policy.enforcement_mode
        self.base: Violation = {
            "policyId": policy.id,
            "policyName": policy.name,
            "policyType": policy.policy_type,
            "enforcementMode": policy.enforcement_mode,
            "severity": policy.severity,
        }

    def applies_to(self, agent_id: str) -> bool:
        agents = self.policy.applies_to_agents
        return not agents or agent_id in agents

    def violation(self, target: str, message: str, **extra: Any) -> Violation:
        return {**self.base, "message": message, "target": target, **extra}

    def check(self, request: CheckRequest, texts: _Texts, out: list[Violation]) -> None:
        raise NotImplementedError


_VERDICT_CACHE_SIZE = 4096
_VERDICT_CACHE_NAME_CHARS = 256  # longer names are decided every time, never kept (memory bound)


class _ToolPolicy(_Compiled):
    def __init__(self, policy: ToolInvocationPolicy) -> None:
        super().__init__(policy)
        self.allow = _compile_globs(policy.rule.allow)
        self.deny = _compile_globs(policy.rule.deny)
        # Verdict per raw tool name ("deny" / "allow" / None): names repeat, and this policy's
        # globs never change (a reload compiles a new object). Bounded; dict get/set are atomic.
        self._verdicts: dict[str, str | None] = {}

    def _verdict(self, raw_name: str) -> str | None:
        try:
            return self._verdicts[raw_name]
        except KeyError:
            pass
        name = normalize_tool_name(raw_name)
        verdict: str | None = None
        if self.deny is not None and self.deny.search(name):
            verdict = "deny"
        elif self.allow is not None and not self.allow.search(name):
            verdict = "allow"
        if len(raw_name) <= _VERDICT_CACHE_NAME_CHARS:
            if len(self._verdicts) >= _VERDICT_CACHE_SIZE:
                self._verdicts.clear()
            self._verdicts[raw_name] = verdict
        return verdict

    def check(self, request: CheckRequest, texts: _Texts, out: list[Violation]) -> None:
        for call in request.tool_calls:
            verdict = self._verdict(call.name)
            if verdict is None:
                continue
            name = _shown_name(call.name)
            message = f"tool {name!r} is {'on the deny' if verdict == 'deny' else 'not on the allow'} list"
            extra = {"toolCallId": call.call_id} if call.call_id else {}
            out.append(self.violation("tool_call", message, toolName=name, **extra))


def _matchable(pattern: str) -> str:
    stripped = strip_pattern(pattern)
    if stripped == pattern:
        return pattern
    try:
        compile_pattern(stripped)
    except ValueError:  # e.g. a character class of marks only: keep the pattern as written
        return pattern
    return stripped


class _InjectionPolicy(_Compiled):
    def __init__(self, policy: InjectionScanPolicy) -> None:
        super().__init__(policy)
        rule = policy.rule
        self.scan_input, self.scan_output = rule.scan_input, rule.scan_output
        # Patterns compare with normalised text, so the characters normalisation removes are
        # taken out of their literal text too (a pattern written with marks still matches).
        patterns = [_matchable(p) for p in rule.patterns]
        self.patterns = [compile_pattern(p) for p in patterns]
        # One combined pass for the common (no-match) case; the individual patterns only run
        # to name the one that matched.
        self.alternation = "|".join(f"(?:{p})" for p in patterns)
        self.combined = compile_pattern(self.alternation)
        self.found = byte_matcher(self.combined)

    def _first_hit(self, text: str, utf8: bytes) -> tuple[int, int, int] | None:
        if not utf8 or not self.found(utf8):
            return None
        for index, pattern in enumerate(self.patterns):
            match = pattern.search(text)
            if match is not None:
                return index, match.start(), match.end()
        return None

    def check(self, request: CheckRequest, texts: _Texts, out: list[Violation]) -> None:
        if self.scan_input and request.input and not texts.input_clear:
            hit = self._first_hit(texts.input, texts.input_utf8)
            if hit is not None:
                index, start, end = hit
                out.append(
                    self.violation(
                        "input",
                        f"input matches injection pattern #{index}",
                        excerpt=_excerpt(texts.input, start, end),
                    )
                )
        if self.scan_output and request.tool_outputs:
            for output, text, utf8 in texts.outputs:
                hit = self._first_hit(text, utf8)
                if hit is not None:
                    index, start, end = hit
                    extra = {"toolName": output.name} if output.name else {}
                    if output.call_id:
                        extra["toolCallId"] = output.call_id
                    out.append(
                        self.violation(
                            "tool_output",
                            f"tool output matches injection pattern #{index}",
                            excerpt=_excerpt(text, start, end),
                            **extra,
                        )
                    )


class _PiiPolicy(_Compiled):
    def __init__(self, policy: PiiAccessPolicy) -> None:
        super().__init__(policy)
        self.types = tuple(policy.rule.denied_pii_types)
        self.any_candidate = any_pii_matcher(frozenset(self.types))
        self.alternation = pii_alternation(frozenset(self.types))

    def _detect(self, text: str, utf8: bytes) -> list[str]:
        return detect_pii(text, self.types) if utf8 and self.any_candidate(utf8) else []

    def check(self, request: CheckRequest, texts: _Texts, out: list[Violation]) -> None:
        if request.input and not texts.input_clear:
            found = self._detect(texts.input, texts.input_utf8)
            if found:
                out.append(self.violation("input", f"input contains {', '.join(found)}", piiTypes=found))
        if not request.tool_calls:
            return
        for (call, text, utf8), (name_text, name_utf8) in zip(texts.arguments, texts.names, strict=True):
            # The name is model-chosen text that is exported and shown: checked like arguments
            # (underscores read as spaces, so ``pay_4111...`` is not one word).
            any_candidate, types = self.any_candidate, self.types
            in_name = detect_pii(name_text, types) if name_utf8 and any_candidate(name_utf8) else []
            found = detect_pii(text, types) if utf8 and any_candidate(utf8) else []
            name = _shown_name(call.name) if in_name else call.name
            if in_name:
                out.append(
                    self.violation(
                        "tool_call",
                        f"name of tool {name!r} contains {', '.join(in_name)}",
                        toolName=name,
                        piiTypes=in_name,
                    )
                )
            if found:
                out.append(
                    self.violation(
                        "tool_call",
                        f"arguments of tool {name!r} contain {', '.join(found)}",
                        toolName=name,
                        piiTypes=found,
                    )
                )


@dataclass
class _Window:
    minute: deque[float] = field(default_factory=deque)
    hour: deque[float] = field(default_factory=deque)
    last_used: float = 0.0


_WINDOW_LIFETIME = 3600.0  # a window unused for the longest span (an hour) holds nothing that counts
_MAX_WINDOWS = 50_000  # (policy, agent) pairs; beyond it the least recently used window is dropped


class _RatePolicy(_Compiled):
    def __init__(self, policy: RateLimitPolicy) -> None:
        super().__init__(policy)
        self.per_minute = policy.rule.max_per_minute
        self.per_hour = policy.rule.max_per_hour

    def exceeded(self, window: _Window, now: float) -> str | None:
        for limit, times, span, label in (
            (self.per_minute, window.minute, 60.0, "minute"),
            (self.per_hour, window.hour, 3600.0, "hour"),
        ):
            if limit is None:
                continue
            while times and times[0] <= now - span:
                times.popleft()
            if len(times) >= limit:
                return f"more than {limit} requests per {label}"
        return None

    def record(self, window: _Window, now: float) -> None:
        if self.per_minute is not None:
            window.minute.append(now)
        if self.per_hour is not None:
            window.hour.append(now)


@dataclass(frozen=True)
class _AgentPlan:
    checks: tuple[_Compiled, ...]
    rate_limits: tuple[_RatePolicy, ...]
    policy_ids: tuple[str, ...]
    allow: Decision
    """The answer when no check finds anything (a constant of the plan: immutable, built once)."""
    input_screen: Callable[[bytes], bool] | None
    """Every input check's patterns in one scan (None: no input check, or too large to combine)."""


def _input_screen(checks: Sequence[_Compiled]) -> Callable[[bytes], bool] | None:
    parts = [c.alternation for c in checks if isinstance(c, _InjectionPolicy) and c.scan_input]
    parts += [c.alternation for c in checks if isinstance(c, _PiiPolicy) and c.alternation]
    if not parts:
        return None
    try:
        return byte_matcher(compile_pattern("|".join(f"(?:{p})" for p in parts)))
    except ValueError:  # over the program budget: each check scans on its own
        return None


# By rule model; the policy types come from schema.RULE_MODELS (a type without a compiler fails here).
_BY_RULE: dict[type, Callable[[Any], _Compiled]] = {
    ToolInvocationRule: _ToolPolicy,
    InjectionScanRule: _InjectionPolicy,
    PiiAccessRule: _PiiPolicy,
    RateLimitRule: _RatePolicy,
}
_COMPILERS: dict[str, Callable[[Any], _Compiled]] = {
    policy_type: _BY_RULE[rule] for policy_type, rule in RULE_MODELS.items()
}


class _Plan:
    """An immutable compiled policy set. Per-agent selections are memoised (the memo only ever
    gains entries, each computed from immutable data, so concurrent fills are harmless)."""

    def __init__(self, policies: Sequence[Policy], version: int) -> None:
        self.version = version
        self.policies = tuple(policies)
        self.compiled = tuple(_COMPILERS[p.policy_type](p) for p in policies if p.is_active)
        self._by_agent: dict[str, _AgentPlan] = {}

    def for_agent(self, agent_id: str) -> _AgentPlan:
        plan = self._by_agent.get(agent_id)
        if plan is None:
            selected = [c for c in self.compiled if c.applies_to(agent_id)]
            ids = tuple(c.id for c in selected)
            checks = tuple(c for c in selected if not isinstance(c, _RatePolicy))
            plan = _AgentPlan(
                checks=checks,
                rate_limits=tuple(c for c in selected if isinstance(c, _RatePolicy)),
                policy_ids=ids,
                allow=Decision("allow", (), self.version, ids),
                input_screen=_input_screen(checks),
            )
            if len(self._by_agent) < 10_000:  # bounded: agent ids may come from untrusted input
                self._by_agent[agent_id] = plan
        return plan


def _outcome(violations: Sequence[Violation]) -> Outcome:
    outcome: Outcome = "allow"
    for v in violations:
        if v["enforcementMode"] == "block":
            return "block"
        if v["enforcementMode"] == "warn":
            outcome = "warn"
    return outcome


class PolicyEngine:
    """Evaluates :class:`~execlave.policy.types.CheckRequest` s against a compiled policy set.

    Args:
        policies: validated policies (see :func:`~execlave.policy.load_policies`).
        clock: monotonic seconds, for rate limits (injectable for tests).
    """

    def __init__(
        self, policies: Sequence[Policy] = (), *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._plan = _Plan(policies, 1)
        self._reload_lock = threading.Lock()
        self._rate_lock = threading.Lock()
        # Ordered by last use (least recent first), so expired windows are evicted from the front.
        self._windows: OrderedDict[tuple[str, str], _Window] = OrderedDict()
        self._paused: dict[str, str | None] = {}

    @property
    def version(self) -> int:
        """Increments on every reload; recorded on spans as the policy-set version."""
        return self._plan.version

    @property
    def policies(self) -> tuple[Policy, ...]:
        return self._plan.policies

    def reload(self, policies: Sequence[Policy]) -> int:
        """Compile ``policies`` and swap them in atomically; returns the new version. If
        compiling fails, the current set stays in force. Rate-limit windows carry over by policy id."""
        with self._reload_lock:
            plan = _Plan(policies, self._plan.version + 1)
            self._plan = plan
            return plan.version

    # -- kill switch ----------------------------------------------------------------------------

    def pause(self, agent_id: str, reason: str | None = None) -> None:
        self._paused[agent_id] = reason

    def resume(self, agent_id: str) -> None:
        self._paused.pop(agent_id, None)

    def is_paused(self, agent_id: str) -> bool:
        return agent_id in self._paused

    def paused_agents(self) -> dict[str, str | None]:
        return dict(self._paused)

    # -- evaluation -----------------------------------------------------------------------------

    def evaluate(self, request: CheckRequest) -> Decision:
        """Decide on ``request``. Raises :class:`~execlave.errors.AgentPausedError` if the agent is paused."""
        if request.agent_id in self._paused:
            raise AgentPausedError(request.agent_id, self._paused.get(request.agent_id))
        plan = self._plan
        agent = plan.for_agent(request.agent_id)
        violations: list[Violation] = []
        if agent.checks:
            texts = _Texts(request, agent.input_screen)
            for compiled in agent.checks:
                compiled.check(request, texts, violations)
        if request.count_request and agent.rate_limits:
            self._apply_rate_limits(request.agent_id, agent.rate_limits, violations)
        if not violations:
            return agent.allow
        return Decision(_outcome(violations), tuple(violations), plan.version, agent.policy_ids)

    def _apply_rate_limits(
        self, agent_id: str, limits: Sequence[_RatePolicy], violations: list[Violation]
    ) -> None:
        # Check and record under one lock so N concurrent requests against a limit of N all see
        # an exact count. A request that ends up blocked (by any policy) is not counted.
        with self._rate_lock:
            now = self._clock()
            self._evict_windows(now)
            windows = []
            for limit in limits:
                key = (limit.id, agent_id)
                window = self._windows.get(key)
                if window is None:
                    window = self._windows[key] = _Window()
                else:
                    self._windows.move_to_end(key)
                window.last_used = now
                windows.append(window)
                message = limit.exceeded(window, now)
                if message is not None:
                    violations.append(limit.violation("input", f"agent {agent_id!r}: {message}"))
            if _outcome(violations) != "block":
                for limit, window in zip(limits, windows, strict=True):
                    limit.record(window, now)

    def _evict_windows(self, now: float) -> None:
        """Drop windows unused for longer than any limit's span (amortised O(1): the table is
        ordered by last use), then the least recently used ones above ``_MAX_WINDOWS``."""
        windows = self._windows
        while windows:
            oldest = next(iter(windows.values()))
            if oldest.last_used > now - _WINDOW_LIFETIME and len(windows) < _MAX_WINDOWS:
                break
            windows.popitem(last=False)
