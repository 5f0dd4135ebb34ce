"""Build, or reuse from the cache, the OpenTelemetry Collector and Jaeger v2 that the local-stack
tests run. Go is used only here, to build test infrastructure from the Go module proxy.

- ``otelcol/``: our own small collector (``main.go`` over the upstream factories) with exactly the
  components ``collector-config/`` names; every collector module pinned to one release.
- ``jaeger/``: a module whose only content is a ``tool`` line for Jaeger v2's ``cmd/jaeger``.

A binary is cached under the user cache directory (``$XDG_CACHE_HOME`` or ``~/.cache``, then
``execlave-sdk/local-stack/``; ``EXECLAVE_STACK_CACHE`` overrides it) in a folder named for its version
and a hash of the module's files and the Go version, so a warm run builds nothing and any change to
a pin rebuilds. Concurrent builds of the same binary wait on a file lock; a binary appears in the
cache only once complete. ``python tests/local_stack/infra/binaries.py`` builds both and prints
their paths and how long each took.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Tool:
    name: str  # the binary's name, and the module folder beside this file
    version: str  # what the binary reports; part of the cache key
    package: str  # what `go build` builds inside the module folder

    @property
    def module(self) -> Path:
        return HERE / self.name


COLLECTOR = Tool("otelcol", "0.161.0", ".")
# Jaeger v2 is released from the same module as v1: v1.76.0 is Jaeger 2.13.0.
JAEGER = Tool("jaeger", "1.76.0", "github.com/jaegertracing/jaeger/cmd/jaeger")
JAEGER_V2_VERSION = "2.13.0"


class BuildError(RuntimeError):
    """Go is missing or `go build` failed; the message has the command and its output."""


def cache_root() -> Path:
    override = os.environ.get("EXECLAVE_STACK_CACHE")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "execlave-sdk" / "local-stack"


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            "the local-stack tests build their collector and Jaeger with Go: install Go 1.26 "
            "(https://go.dev/doc/install) and make sure `go` is on PATH"
        )
    return go


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # Two cores in CI: build two packages at a time; never touch go.mod/go.sum while building.
    env["GOFLAGS"] = " ".join(
        filter(None, [env.get("GOFLAGS", ""), "-p=2", "-mod=readonly", "-buildvcs=false"])
    )
    env.setdefault("CGO_ENABLED", "0")
    return env


def cache_key(tool: Tool) -> str:
    digest = hashlib.sha256()
    for path in sorted(tool.module.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    version = subprocess.run(
        [_go(), "env", "GOVERSION", "GOOS", "GOARCH"], capture_output=True, text=True, check=True
    ).stdout
    digest.update(version.encode())
    return f"{tool.name}-{tool.version}-{digest.hexdigest()[:16]}"


def ensure(tool: Tool) -> Path:
    """The tool's binary: from the cache when it is there, else built (once) and cached."""
    target_dir = cache_root() / cache_key(tool)
    binary = target_dir / tool.name
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    target_dir.mkdir(parents=True, exist_ok=True)
    with (target_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same binary
        if binary.is_file():
            return binary
        partial = target_dir / f"{tool.name}.partial"
        command = [_go(), "build", "-trimpath", "-ldflags=-s -w", "-o", str(partial), tool.package]
        proc = subprocess.run(command, cwd=tool.module, env=_go_env(), capture_output=True, text=True)
        if proc.returncode != 0:
            partial.unlink(missing_ok=True)
            raise BuildError(
                f"building {tool.name} {tool.version} failed: `{' '.join(command)}` in {tool.module} "
                f"exited {proc.returncode}\n{proc.stdout}{proc.stderr}"
            )
        partial.rename(binary)  # atomic: the cache never holds half a binary
    return binary


def collector() -> Path:
    return ensure(COLLECTOR)


def jaeger() -> Path:
    return ensure(JAEGER)


def main() -> int:
    for tool in (COLLECTOR, JAEGER):
        started = time.monotonic()
        try:
            path = ensure(tool)
        except BuildError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"{tool.name} {tool.version}: {path} ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
