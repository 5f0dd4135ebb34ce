import json

import pytest

from execlave.errors import PolicyConfigError
from execlave.policy import NO_POLICIES, baseline_policies, load_policies
from execlave.policy.loader import resolve_policy_source
from execlave.policy.schema import InjectionScanPolicy, Policy, ToolInvocationPolicy

API_SHAPED = {
    "id": "no-delete",
    "name": "No destructive tools",
    "policyType": "tool_invocation",
    "enforcementMode": "block",
    "appliesToAgents": [],
    "isActive": True,
    "createdAt": "2026-01-01T00:00:00Z",  # metadata keys (createdAt, updatedAt) are ignored
    "ruleDefinition": {"deny": ["delete_*"]},
}


def test_api_shaped_policy_loads_unchanged():
    (policy,) = load_policies([API_SHAPED])
    assert isinstance(policy, ToolInvocationPolicy) and isinstance(policy, Policy)
    assert policy.rule.deny == ("delete_*",)
    assert policy.model_dump(by_alias=True)["ruleDefinition"] == {"allow": (), "deny": ("delete_*",)}


def test_defaults():
    (policy,) = load_policies(
        [{"id": "x", "policyType": "injection_scan", "ruleDefinition": {"patterns": ["a"]}}]
    )
    assert isinstance(policy, InjectionScanPolicy)
    assert (policy.name, policy.enforcement_mode, policy.severity, policy.is_active) == (
        "x",
        "block",
        "high",
        True,
    )
    assert policy.applies_to_agents == ()
    assert (policy.rule.scan_input, policy.rule.scan_output) == (True, False)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_file_formats_list_or_mapping(tmp_path, suffix):
    for document in ([API_SHAPED], {"policies": [API_SHAPED]}):
        path = tmp_path / f"p{suffix}"
        path.write_text(json.dumps(document))  # JSON is also valid YAML
        assert [p.id for p in load_policies(path)] == ["no-delete"]


def test_every_problem_is_reported_with_file_policy_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        """
- id: backref
  policyType: injection_scan
  ruleDefinition: {patterns: ['fine', '(a)\\1', 'x(?=y)']}
- policyType: tool_invocation
  ruleDefinition: {deny: ['x']}
- id: typo
  policyType: injection_scan
  ruleDefinition: {patterns: ['a'], scan_outptu: true}
- id: kind
  policyType: sql_guard
- id: pii
  policyType: pii_access
  ruleDefinition: {denied_pii_types: [email, dna]}
- id: rate
  policyType: rate_limit
  ruleDefinition: {maxRequestsPerMinute: 0}
- id: backref
  policyType: tool_invocation
  ruleDefinition: {allow: ['a']}
"""
    )
    with pytest.raises(PolicyConfigError) as info:
        load_policies(path)
    found = {(i.policy, i.field) for i in info.value.issues}
    assert all(i.source == str(path) for i in info.value.issues)
    assert ("backref", "ruleDefinition.patterns[1]") in found
    assert ("backref", "ruleDefinition.patterns[2]") in found
    assert ("#1", "id") in found
    assert ("typo", "ruleDefinition.scan_outptu") in found
    assert ("kind", "policyType") in found
    assert ("pii", "ruleDefinition.denied_pii_types[1]") in found
    assert ("rate", "ruleDefinition.maxRequestsPerMinute") in found
    assert any(
        i.policy == "backref" and i.field == "id" and "duplicate" in i.message for i in info.value.issues
    )
    text = str(info.value)
    assert f"{path}: backref / ruleDefinition.patterns[1]: RE2 cannot compile" in text
    assert "sql_guard" in text and "tool_invocation" in text  # says what the valid types are


@pytest.mark.parametrize(
    ("rule", "policy_type", "needle"),
    [
        ({}, "tool_invocation", "allow"),
        ({"patterns": []}, "injection_scan", "at least 1"),
        ({"patterns": ["a"], "scan_input": False}, "injection_scan", "check nothing"),
        ({"patterns": [""]}, "injection_scan", "empty"),
        ({}, "rate_limit", "maxRequestsPerMinute"),
    ],
)
def test_rules_that_would_do_nothing_are_errors(rule, policy_type, needle):
    with pytest.raises(PolicyConfigError, match=needle):
        load_policies([{"id": "p", "policyType": policy_type, "ruleDefinition": rule}])


def test_missing_and_unparsable_files(tmp_path):
    with pytest.raises(PolicyConfigError, match="file not found"):
        load_policies(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    with pytest.raises(PolicyConfigError, match="not valid JSON"):
        load_policies(broken)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text")
    with pytest.raises(PolicyConfigError, match="expected a list of policies"):
        load_policies(scalar)


def test_in_memory_list_is_named_and_non_mapping_items_reported():
    with pytest.raises(PolicyConfigError) as info:
        load_policies([API_SHAPED, "oops"], source_name="remote")
    (issue,) = info.value.issues
    assert (issue.source, issue.policy, issue.field) == ("remote", "#1", "(policy)")


def test_policy_config_error_is_a_value_error():
    with pytest.raises(ValueError):
        load_policies([{"id": "p"}])


def test_baseline_is_monitor_only_and_valid():
    policies = baseline_policies()
    assert {p.policy_type for p in policies} == {"injection_scan", "pii_access"}
    assert all(p.enforcement_mode == "monitor" for p in policies)


# -- empty documents ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n", "# nothing here yet\n# policies: []\n", "[]\n", "policies: []\n"])
def test_empty_or_comment_only_file_is_an_error(tmp_path, text):
    path = tmp_path / "policies.yaml"
    path.write_text(text)
    with pytest.raises(PolicyConfigError, match="no policies") as info:
        load_policies(path)
    assert "allowEmpty: true" in str(info.value)  # says how to mean it


@pytest.mark.parametrize("document", [[], (), {"policies": []}, {"policies": None}])
def test_empty_in_memory_set_is_an_error(document):
    with pytest.raises(PolicyConfigError, match="no policies"):
        load_policies(document)


def test_empty_set_on_purpose(tmp_path):
    path = tmp_path / "none.yaml"
    path.write_text("# tracing only: Execlave's server decides\npolicies: []\nallowEmpty: true\n")
    assert load_policies(path) == []
    assert load_policies(NO_POLICIES) == []
    assert load_policies({"policies": [API_SHAPED], "allowEmpty": True})[0].id == "no-delete"


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        ({"policies": [], "allowEmpty": "yes"}, "allowEmpty"),
        ({"policies": [], "allowEmtpy": True}, "did you mean 'allowEmpty'"),
        ({"policy": [API_SHAPED]}, "policies"),
        (API_SHAPED, "a single policy"),
    ],
)
def test_document_level_mistakes(document, needle):
    with pytest.raises(PolicyConfigError, match=needle):
        load_policies(document)


# -- top-level keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("enforcment_mode", "enforcementMode"),
        ("appliesToAgent", "appliesToAgents"),
        ("isActiv", "isActive"),
        ("policy_type", "policyType"),
        ("enforcement_mode", "enforcementMode"),
        ("applies_to_agents", "appliesToAgents"),
        ("is_active", "isActive"),
        ("rule_definition", "ruleDefinition"),
        ("PolicyType", "policyType"),
    ],
)
def test_unknown_or_snake_case_top_level_keys_are_errors_with_a_hint(key, hint):
    item = {"id": "p", "policyType": "tool_invocation", "ruleDefinition": {"deny": ["x"]}}
    item[key] = item.pop(hint, "block" if "mode" in key else [] if "agent" in key.lower() else False)
    with pytest.raises(PolicyConfigError) as info:
        load_policies([item])
    (issue,) = info.value.issues  # one precise issue, not also "policyType: missing"
    assert (issue.policy, issue.field) == ("p", key)
    assert f"did you mean '{hint}'?" in issue.message


def test_unrelated_unknown_key_lists_the_valid_ones():
    item = {**API_SHAPED, "owner": "ops"}
    with pytest.raises(PolicyConfigError) as info:
        load_policies([item])
    (issue,) = info.value.issues
    assert issue.field == "owner" and "unknown key" in issue.message and "enforcementMode" in issue.message


def test_unknown_rule_key_gets_a_hint():
    item = {
        "id": "p",
        "policyType": "injection_scan",
        "ruleDefinition": {"patterns": ["a"], "scan_outptu": True},
    }
    with pytest.raises(PolicyConfigError, match="did you mean 'scan_output'"):
        load_policies([item])


def test_metadata_keys_are_accepted_and_ignored():
    (policy,) = load_policies([{**API_SHAPED, "updatedAt": "2026-02-01T00:00:00Z"}])
    assert "createdAt" not in policy.model_dump(by_alias=True)


# -- syntax errors quote the position, never the content ------------------------------------------

CREDENTIALS = (
    "[default]\n"
    "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
)


@pytest.mark.parametrize("name", ["credentials", "credentials.yaml", "credentials.json"])
def test_syntax_error_quotes_position_not_content(tmp_path, name):
    path = tmp_path / name
    path.write_text(CREDENTIALS)
    with pytest.raises(PolicyConfigError) as info:
        load_policies(path)
    text = str(info.value)
    assert "AKIA" not in text and "wJalr" not in text and "aws_" not in text, text
    assert "line " in text and "column " in text, text
    # The parser's own text (which quotes the line) is not chained either.
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_yaml_problem_text_does_not_echo_names(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("- id: a\n  policyType: *AKIAIOSFODNN7EXAMPLE\n")  # an undefined alias
    with pytest.raises(PolicyConfigError) as info:
        load_policies(path)
    assert "AKIA" not in str(info.value) and "line 2" in str(info.value)


@pytest.mark.parametrize("field", ["id", "name"])
@pytest.mark.parametrize("bad", ["\x1b[2J", "ops\x07", "a\u202eb", "zero\u200bwidth", "two\nlines"])
def test_ids_and_names_may_not_carry_control_characters(field, bad):
    item = {"id": "p", "policyType": "tool_invocation", "ruleDefinition": {"deny": ["x"]}, field: bad}
    with pytest.raises(PolicyConfigError, match="control or invisible formatting character"):
        load_policies([item])


def test_control_characters_in_ids_are_escaped_in_errors():
    evil = "\x1b[2J\x1b]52;c;ZXZpbA==\x07ok"
    with pytest.raises(PolicyConfigError) as info:
        load_policies([{"id": evil, "policyType": "tool_invocation", "ruleDefinition": {}}])
    text = str(info.value)
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b[2J" in text


# -- Execlave(policies=...) sources ------------------------------------------------------------


def test_resolve_a_single_policy_mapping_is_a_clear_type_error():
    with pytest.raises(TypeError, match=r"a list of policies.*policies=\[\{") as info:
        resolve_policy_source(API_SHAPED)
    assert "model_dump" not in str(info.value)


@pytest.mark.parametrize("bad", [42, b"p.yaml", object()])
def test_resolve_rejects_other_types(bad):
    with pytest.raises(TypeError, match="policy file path"):
        resolve_policy_source(bad)


def test_resolve_mixed_list_and_document(tmp_path):
    (policy,) = load_policies([API_SHAPED])
    other = {**API_SHAPED, "id": "other"}
    assert [p.id for p in resolve_policy_source([policy, other])] == ["no-delete", "other"]
    assert [p.id for p in resolve_policy_source({"policies": [other]})] == ["other"]
    with pytest.raises(TypeError, match="one Policy"):
        resolve_policy_source(policy)


def test_resolve_env_file_empty_does_not_drop_the_baseline_silently(tmp_path, monkeypatch):
    path = tmp_path / "empty.yaml"
    path.write_text("# TODO\n")
    monkeypatch.setenv("EXECLAVE_POLICY_FILE", str(path))
    with pytest.raises(PolicyConfigError, match="no policies") as info:
        resolve_policy_source(None)
    assert "EXECLAVE_POLICY_FILE" in str(info.value)
    monkeypatch.delenv("EXECLAVE_POLICY_FILE")
    assert {p.id for p in resolve_policy_source(None)} == {p.id for p in baseline_policies()}
