import json

import pytest

from execlave.errors import PolicyConfigError
from execlave.policy import baseline_policies, load_policies
from execlave.policy.schema import InjectionScanPolicy, Policy, ToolInvocationPolicy

API_SHAPED = {
    "id": "no-delete",
    "name": "No destructive tools",
    "policyType": "tool_invocation",
    "enforcementMode": "block",
    "appliesToAgents": [],
    "isActive": True,
    "createdAt": "2026-01-01T00:00:00Z",  # unknown top-level keys from the API are ignored
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
