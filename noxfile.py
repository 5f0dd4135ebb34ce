"""The version matrix: one environment per supported AutoGen line, plus lint. `nox` runs every session.

Every test runs in each environment; a session sets EXECLAVE_REQUIRE to the framework it installed,
so that framework's adapter tests fail (never skip) if it does not import. pytest exit code 5 (no
tests collected) fails a session, as any non-zero exit does in nox.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = False

PYTHON = "3.11"

# Classic AutoGen (`import autogen`, ConversableAgent).
CLASSIC = {
    "ag2-0.14": ["ag2==0.14.0"],  # the newest AG2 below 1.0
    "ag2-oldest": ["ag2==0.3.2"],  # the oldest AG2 on PyPI; the lower bound of the `autogen` extra
    "pyautogen-0.2": ["pyautogen==0.2.35"],  # the last classic pyautogen
}
# autogen-agentchat (async, `autogen_agentchat`); autogen-ext brings the offline replay model client.
AGENTCHAT = {
    "agentchat-0.4": ["autogen-agentchat==0.4.2", "autogen-ext==0.4.2"],  # the oldest 0.4.x on PyPI
    "agentchat-0.7": ["autogen-agentchat==0.7.5", "autogen-ext==0.7.5"],
    # What `pip install pyautogen` gives today: an empty proxy that pulls in autogen-agentchat.
    "pyautogen-0.10": ["pyautogen==0.10.0", "autogen-ext"],
}
# AG2 1.x (`import ag2`, ag2.Agent with middleware): the same distribution as the classic ag2 lines.
AG2 = {
    "ag2-1.0": ["ag2==1.0.0"],  # the oldest 1.x on PyPI; the lower bound of the `ag2` extra
    "ag2-1.2": ["ag2==1.2.1"],
}


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    paths = ("src", "tests", "examples", "benchmarks", "noxfile.py")
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)
    session.run("mypy", "src")
    # The layer rules ([tool.importlinter] in pyproject.toml): a wrong-way import fails here.
    session.run("lint-imports", "--no-cache")


@nox.session(python=PYTHON)
@nox.parametrize("line", list(CLASSIC))
def classic(session: nox.Session, line: str) -> None:
    session.install("-e", ".[dev]", *CLASSIC[line])
    session.run("python", "-c", "import autogen; print('autogen', autogen.__version__)")
    session.run("pytest", *session.posargs, env={"EXECLAVE_REQUIRE": "autogen"})


@nox.session(python=PYTHON)
@nox.parametrize("line", list(AGENTCHAT))
def agentchat(session: nox.Session, line: str) -> None:
    session.install("-e", ".[dev]", *AGENTCHAT[line])
    session.run(
        "python",
        "-c",
        "import autogen_agentchat, importlib.metadata as m; print(m.version('autogen-agentchat'))",
    )
    session.run("pytest", *session.posargs, env={"EXECLAVE_REQUIRE": "autogen_agentchat"})


@nox.session(python=PYTHON)
@nox.parametrize("line", list(AG2))
def ag2(session: nox.Session, line: str) -> None:
    session.install("-e", ".[dev]", *AG2[line])
    session.run("python", "-c", "import ag2; print('ag2', ag2.__version__)")
    session.run("pytest", *session.posargs, env={"EXECLAVE_REQUIRE": "ag2"})


@nox.session(python=PYTHON)
def vendor(session: nox.Session) -> None:
    """The published execlave-sdk 1.9.1 client against our loopback fake of Execlave's API: proves
    the fake faithful. Its own environment and no `-e .` (both packages import as `execlave`)."""
    session.install("execlave-sdk==1.9.1", "pytest>=8")
    session.run(
        "pytest",
        "--noconftest",
        "-p",
        "no:cacheprovider",
        "tests/vendor",
        *session.posargs,
        env={"EXECLAVE_VENDOR": "1"},
    )


@nox.session(python=PYTHON)
def local_stack(session: nox.Session) -> None:
    """The local stack for real: an OpenTelemetry Collector and Jaeger v2, built with Go from the Go
    module proxy (cached per version under the user cache dir), run on loopback with collector-config/;
    tests/local_stack checks what Jaeger and a stand-in for Execlave receive, and screenshots the traces
    with headless Chromium (installed here with apt-get when missing and possible; else only that step
    skips)."""
    session.install("-e", ".[dev]", *CLASSIC["ag2-0.14"])
    if not shutil.which("chromium") and shutil.which("apt-get") and os.geteuid() == 0:
        apt = {"DEBIAN_FRONTEND": "noninteractive"}
        for step in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
            if subprocess.run(step, env={**os.environ, **apt}, check=False).returncode != 0:
                session.warn(f"`{' '.join(step)}` failed: the screenshot test will skip")
                break
    session.run("python", "tests/local_stack/infra/binaries.py")  # cold: builds; warm: finds both cached
    artifacts = os.path.join(session.create_tmp(), "artifacts")
    env = {"EXECLAVE_REQUIRE": "autogen", "EXECLAVE_LOCAL_STACK": "1", "EXECLAVE_STACK_ARTIFACTS": artifacts}
    session.run("pytest", "tests/local_stack", "-rs", *session.posargs, env=env)
