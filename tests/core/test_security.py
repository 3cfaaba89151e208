"""Secrets: Argon2id for passwords at production strength, SHA-256 for high-entropy tokens."""

from __future__ import annotations

from argon2 import PasswordHasher, extract_parameters
from argon2.profiles import RFC_9106_LOW_MEMORY

from haihe.core import security


def test_production_hasher_is_rfc_9106() -> None:
    assert security._hasher is not None
    fresh = PasswordHasher()
    params = extract_parameters(fresh.hash("x"))
    assert params.memory_cost >= RFC_9106_LOW_MEMORY.memory_cost
    assert params.time_cost >= RFC_9106_LOW_MEMORY.time_cost
    assert params.type.name == "ID"


def test_password_round_trip_and_wrong_password() -> None:
    stored = security.hash_password("正确的密码 horse")
    assert stored.startswith("$argon2id$")
    assert security.verify_password(stored, "正确的密码 horse")
    assert not security.verify_password(stored, "正确的密码 horsE")
    assert not security.verify_password("not a hash", "anything")


def test_tokens_are_random_and_compared_by_digest() -> None:
    a, b = security.new_token("hh_at"), security.new_token("hh_at")
    assert a != b
    assert a.startswith("hh_at_")
    assert len(a) > 40
    assert security.same_digest(security.digest(a), a)
    assert not security.same_digest(security.digest(a), b)
