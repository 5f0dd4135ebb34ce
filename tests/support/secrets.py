"""Every API key string the test suite hands to execlave. The root ``tests/conftest.py`` fails any
test in which one of them shows up in a log record, so a test that uses a key takes it from here."""

from __future__ import annotations

__all__ = ["CLIENT_KEY", "CLOUD_KEY", "FLUSH_KEY", "HARDENING_KEY", "KNOWN_KEYS", "REPR_KEY", "WIRE_KEY"]

CLIENT_KEY = "exk_live_8f3b2c1d9e7a6b5c4d3e2f1a"
CLOUD_KEY = "exk_live_CLOUDTEST_7d1e0c9b8a7f6e5d4c3b"
WIRE_KEY = "sk-live-9f8e7d6c5b4a"
FLUSH_KEY = "sk-live-NEVER-LOG-ME-123"
REPR_KEY = "sk-live-SECRET"
HARDENING_KEY = "exk_live_HARDEN_0a1b2c3d4e5f6a7b8c9d"

KNOWN_KEYS: tuple[str, ...] = (CLIENT_KEY, CLOUD_KEY, WIRE_KEY, FLUSH_KEY, REPR_KEY, HARDENING_KEY)

INGEST_KEY = "exk_live_INGEST_5e4d3c2b1a0f9e8d7c6b"
KNOWN_KEYS += (INGEST_KEY,)
