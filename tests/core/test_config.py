"""The configuration table (execlave/_config.py) is the one place each client option is defined:
the constructor's signature, its docstring and the README agree with it, and every option is
resolved argument > environment variable > default."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from execlave import Execlave
from execlave._config import BY_NAME, DEFAULT_BASE_URL, OPTIONS, resolve
from support.secrets import CLIENT_KEY

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src" / "execlave"


def _doc_entries() -> dict[str, str]:
    doc = inspect.getdoc(Execlave) or ""
    args = doc.split("Args:", 1)[1]
    entries: dict[str, str] = {}
    for match in re.finditer(r"^    (\w+): (.*?)(?=^    \w+: |\Z)", args, re.S | re.M):
        entries[match.group(1)] = " ".join(match.group(2).split())
    return entries


def test_the_signature_is_the_table():
    params = list(inspect.signature(Execlave.__init__).parameters.values())[1:]
    assert [p.name for p in params] == [o.name for o in OPTIONS]
    for param in params:
        option = BY_NAME[param.name]
        assert param.default == option.argument_default, param.name
        assert param.annotation == option.type, param.name


def test_every_option_is_documented_with_its_variables_and_default():
    entries = _doc_entries()
    assert list(entries) == [o.name for o in OPTIONS]
    for option in OPTIONS:
        text = entries[option.name]
        for variable in option.env:
            assert f"``{variable}``" in text, (option.name, variable)
        default = option.default
        if isinstance(default, bool):
            assert ("off" if not default else "on") in text, option.name
        elif isinstance(default, float):
            assert f"default {default:g}" in text, option.name
        elif isinstance(default, str) and option.resolved_in == "execlave._config":
            assert default in text, option.name


def test_the_readme_signature_is_the_table():
    readme = " ".join((ROOT / "README.md").read_text().split())
    rendered = ", ".join(
        ("*, " if i == 1 else "") + f"{o.name}={o.argument_default!r}".replace("'", '"')
        for i, o in enumerate(OPTIONS)
    )
    assert f"`Execlave({rendered})`" in readme


def test_the_default_base_url_is_written_once_in_code():
    literal = f'"{DEFAULT_BASE_URL}"'
    holders = [p.relative_to(SOURCE).as_posix() for p in SOURCE.rglob("*.py") if literal in p.read_text()]
    assert holders == ["_config.py"]


@pytest.mark.parametrize(
    ("argument", "env", "expected"),
    [
        ("https://arg.example", "https://env.example", "https://arg.example"),
        (None, "  https://env.example  ", "https://env.example"),
        (None, "", DEFAULT_BASE_URL),
        (None, None, DEFAULT_BASE_URL),
    ],
)
def test_resolution_order_is_argument_then_env_then_default(monkeypatch, argument, env, expected):
    if env is None:
        monkeypatch.delenv("EXECLAVE_BASE_URL", raising=False)
    else:
        monkeypatch.setenv("EXECLAVE_BASE_URL", env)
    assert resolve("base_url", argument) == expected


def test_the_client_resolves_through_the_table(monkeypatch):
    from opentelemetry.sdk.trace import TracerProvider

    from execlave.policy import NO_POLICIES

    monkeypatch.setenv("EXECLAVE_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("EXECLAVE_ENVIRONMENT", "staging")
    monkeypatch.setenv("EXECLAVE_API_KEY", CLIENT_KEY)
    exe = Execlave(policies=NO_POLICIES, tracer_provider=TracerProvider())
    try:
        assert (exe.base_url, exe.environment) == ("http://127.0.0.1:9", "staging")
        assert "api_key=set" in repr(exe)
    finally:
        exe.shutdown(timeout=0.5)
    exe = Execlave(
        None,
        policies=NO_POLICIES,
        environment="dev",
        base_url="http://127.0.0.2:9",
        tracer_provider=TracerProvider(),
    )
    try:
        assert (exe.base_url, exe.environment) == ("http://127.0.0.2:9", "dev")
    finally:
        exe.shutdown(timeout=0.5)


def test_options_read_elsewhere_name_their_module():
    with pytest.raises(ValueError, match=r"execlave\.telemetry"):
        resolve("capture_content", None)
