"""These tests run the published ``execlave-sdk`` 1.9.1 client (same import name as ours) against
the loopback fake, in the ``vendor`` nox session only (its own environment, ``--noconftest``).
Anywhere else they are not collected."""

import os

if os.environ.get("EXECLAVE_VENDOR") != "1":
    collect_ignore_glob = ["test_*.py"]
