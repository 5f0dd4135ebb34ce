"""Loading has limits: what a policy file can make the loader read, parse and compile is bounded,
and every bound ends in a PolicyConfigError that says what to fix (never a hang, a MemoryError or
a RecursionError)."""

import os
import threading

import pytest

from execlave.errors import PolicyConfigError
from execlave.policy import load_policies
from execlave.policy.loader import (
    MAX_DEPTH,
    MAX_DOCUMENT_PROGRAM_SIZE,
    MAX_FILE_BYTES,
    MAX_NODES,
    MAX_TEXT_CHARS,
)
from execlave.policy.schema import MAX_PATTERN_CHARS, MAX_PATTERNS, MAX_PROGRAM_SIZE, compile_pattern


def _load_in_thread(path):
    """load_policies(path) in a daemon thread: a loader that blocks fails the test instead of
    hanging the suite."""
    result: list[BaseException | object] = []
    thread = threading.Thread(target=lambda: result.append(_catch(path)), daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "load_policies blocked"
    return result[0]


def _catch(path):
    try:
        return load_policies(path)
    except BaseException as exc:  # the test inspects what came out
        return exc


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "policies.yaml"
    os.mkfifo(fifo)
    outcome = _load_in_thread(fifo)
    assert isinstance(outcome, PolicyConfigError), outcome
    assert "not a regular file" in str(outcome)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_is_refused_without_reading_it():
    outcome = _load_in_thread("/dev/zero")
    assert isinstance(outcome, PolicyConfigError), outcome
    assert "not a regular file" in str(outcome)


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(PolicyConfigError, match="not a regular file"):
        load_policies(tmp_path)


def test_size_cap(tmp_path):
    path = tmp_path / "big.yaml"
    policy = "- id: p{}\n  policyType: tool_invocation\n  ruleDefinition: {{deny: [x]}}\n"
    with path.open("w") as fh:
        i = 0
        while fh.tell() <= MAX_FILE_BYTES:
            fh.write(policy.format(i))
            i += 1
    with pytest.raises(PolicyConfigError, match=r"larger than 1 MiB"):
        load_policies(path)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 20_000, 200_000])
def test_deep_nesting_is_a_config_error(tmp_path, suffix, depth):
    path = tmp_path / f"deep{suffix}"
    path.write_text("[" * depth + "]" * depth)
    with pytest.raises(PolicyConfigError, match="nested more than"):
        load_policies(path)


def test_deep_nesting_in_memory():
    deep: list = []
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(PolicyConfigError, match="nested more than"):
        load_policies([{"id": "p", "policyType": "tool_invocation", "ruleDefinition": {"deny": deep}}])


def test_cyclic_in_memory_document():
    rule: dict = {"deny": ["x"]}
    rule["self"] = rule
    with pytest.raises(PolicyConfigError, match="more than"):
        load_policies([{"id": "p", "policyType": "tool_invocation", "ruleDefinition": rule}])


def test_yaml_recursive_alias(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("- &a\n  id: p\n  policyType: tool_invocation\n  ruleDefinition: {deny: [*a]}\n")
    with pytest.raises(PolicyConfigError):
        load_policies(path)


def _alias_file(tmp_path, pattern_chars, copies):
    """A short file whose one long pattern is repeated ``copies`` times through aliases."""
    long = "x" * pattern_chars
    aliases = ", ".join(["*p"] * copies)
    path = tmp_path / "amplified.yaml"
    path.write_text(
        f"- id: anchor\n  policyType: injection_scan\n  ruleDefinition: {{patterns: [&p '{long}']}}\n"
        f"- id: amplified\n  policyType: injection_scan\n  ruleDefinition: {{patterns: [{aliases}]}}\n"
    )
    return path


def test_alias_amplified_text_is_bounded(tmp_path):
    path = _alias_file(tmp_path, 2_000, MAX_TEXT_CHARS // 2_000 + 10)
    assert path.stat().st_size < 20_000  # a small file ...
    with pytest.raises(PolicyConfigError, match="YAML aliases") as info:  # ... that expands too far
        load_policies(path)
    assert "MiB" in str(info.value)


def test_alias_amplified_node_count_is_bounded(tmp_path):
    path = tmp_path / "nodes.yaml"
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 7):  # 10**7 values from a few hundred bytes
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]")
    lines.append("policies: *a6")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(PolicyConfigError, match=f"more than {MAX_NODES:,} values"):
        load_policies(path)


def test_patterns_per_policy_are_bounded():
    rule = {"patterns": [f"p{i}" for i in range(MAX_PATTERNS + 1)]}
    with pytest.raises(PolicyConfigError, match=f"at most {MAX_PATTERNS:,}") as info:
        load_policies([{"id": "many", "policyType": "injection_scan", "ruleDefinition": rule}])
    (issue,) = info.value.issues
    assert (issue.policy, issue.field) == ("many", "ruleDefinition.patterns")


def test_pattern_text_per_policy_is_bounded():
    rule = {"patterns": ["a" * 1000 + str(i) for i in range(MAX_PATTERN_CHARS // 1000 + 1)]}
    with pytest.raises(PolicyConfigError, match="characters of patterns"):
        load_policies([{"id": "long", "policyType": "injection_scan", "ruleDefinition": rule}])


def test_globs_per_list_are_bounded():
    rule = {"deny": [f"t{i}" for i in range(MAX_PATTERNS + 1)]}
    with pytest.raises(PolicyConfigError, match=f"at most {MAX_PATTERNS:,}"):
        load_policies([{"id": "globs", "policyType": "tool_invocation", "ruleDefinition": rule}])


def test_compiled_program_size_is_bounded():
    # Short to write, large once compiled: a counted repetition of a Unicode class.
    with pytest.raises(PolicyConfigError, match="too large once compiled"):
        load_policies(
            [{"id": "huge", "policyType": "injection_scan", "ruleDefinition": {"patterns": [r"\pL{1000}"]}}]
        )
    with pytest.raises(ValueError, match="too large once compiled"):
        compile_pattern(r"(\pL{100}){10}")


def test_compiled_size_of_a_policy_is_bounded():
    # Each pattern compiles (about 48,000 RE2 instructions); together they are over the budget.
    patterns = [rf"\pL{{40}}{i}" for i in range(MAX_PROGRAM_SIZE // 40_000 + 1)]
    with pytest.raises(PolicyConfigError, match=f"more than {MAX_PROGRAM_SIZE:,} RE2 instructions") as info:
        load_policies(
            [{"id": "big", "policyType": "injection_scan", "ruleDefinition": {"patterns": patterns}}]
        )
    (issue,) = info.value.issues  # reported once; the patterns after it are not compiled
    assert issue.policy == "big" and issue.field.startswith("ruleDefinition.patterns[")


def test_compiled_size_of_a_document_is_bounded():
    policy = {"policyType": "injection_scan", "ruleDefinition": {"patterns": [r"\pL{40}a", r"\pL{40}b"]}}
    count = MAX_DOCUMENT_PROGRAM_SIZE // 90_000 + 1
    with pytest.raises(PolicyConfigError, match="the policies of this document compile to more than") as info:
        load_policies([{**policy, "id": f"p{i}"} for i in range(count)])
    assert len(info.value.issues) == 1


def test_a_sensible_file_is_well_inside_the_limits(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(
        "- id: a\n  policyType: injection_scan\n"
        "  ruleDefinition:\n    patterns: &common ['ignore previous', 'rm -rf']\n"
        "- id: b\n  policyType: injection_scan\n  ruleDefinition: {patterns: *common, scan_output: true}\n"
    )
    assert [p.id for p in load_policies(path)] == ["a", "b"]


def test_a_wide_yaml_document_is_refused_before_it_is_built(tmp_path):
    path = tmp_path / "wide.yaml"
    path.write_text("[" + "a, " * (MAX_NODES + 10) + "a]")
    with pytest.raises(PolicyConfigError, match=f"more than {MAX_NODES:,} values at line 1"):
        load_policies(path)


def test_python_tags_are_refused(tmp_path):
    path = tmp_path / "tag.yaml"
    path.write_text("- !!python/object/apply:os.system ['echo owned']\n")
    with pytest.raises(PolicyConfigError, match="not valid YAML: could not determine a constructor") as info:
        load_policies(path)
    assert "os.system" not in str(info.value)


def test_limits_hold_with_the_pure_python_yaml_parser(tmp_path, monkeypatch):
    import yaml

    from execlave.policy import loader

    monkeypatch.setattr(loader, "_YamlLoader", yaml.SafeLoader)  # PyYAML built without libyaml
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 20_000 + "]" * 20_000)
    with pytest.raises(PolicyConfigError, match="nested more than"):
        load_policies(deep)
    assert [p.id for p in load_policies(_alias_file(tmp_path, 10, 3))] == ["anchor", "amplified"]
