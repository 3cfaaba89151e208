"""Verification catches every kind of tampering, through raw SQL, on both backends."""

from __future__ import annotations

import datetime as dt

import pytest
from audit_support import (
    GATEWAY,
    add_entry,
    build_ledger,
    checks,
    days_ago,
    entry,
    rewrite_from,
    run_verify,
    sign_heads,
    sql,
)
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from haihe.audit import chain, scan, service, signing, verify
from haihe.audit.models import AuditEntry
from haihe.core.settings import Settings

Factory = sessionmaker[Session]


@pytest.fixture
def ledger(session_factory: Factory, settings: Settings) -> Factory:
    build_ledger(session_factory, 40)
    sign_heads(session_factory, settings)
    return session_factory


def test_an_untouched_ledger_is_intact(ledger: Factory, settings: Settings) -> None:
    report = run_verify(ledger, settings)
    assert report.problems == []
    assert report.entries == 40


def test_an_untouched_ledger_passes_the_whole_chunk_check(
    ledger: Factory, settings: Settings
) -> None:
    # the database's rebuild of every varied entry (Chinese, tabs, NULLs, JSON) is the bytes
    # Python hashed, so no chunk has to be walked entry by entry
    assert run_verify(ledger, settings).chains[0].rechecked == 0


def test_only_a_failing_chunk_is_walked_entry_by_entry(
    ledger: Factory, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan, "CHUNK", 10)
    monkeypatch.setattr(scan, "SERVER_CHUNK", 10)
    sql(ledger, "UPDATE audit_entries SET actor_name = '李四' WHERE seq = 15")
    report = run_verify(ledger, settings)
    assert checks(report) == {(15, "hash")}
    assert report.chains[0].rechecked == 1


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # its planner settings
def test_verifying_leaves_the_sessions_planner_settings_as_they_were(
    ledger: Factory, settings: Settings
) -> None:
    key = signing.local_public_key(settings)
    with ledger() as s:
        before = s.execute(text("SELECT current_setting('jit'), current_setting('enable_seqscan')"))
        shown = before.one()
        assert verify.verify_ledger(s, public_keys=[key] if key else []).intact
        after = s.execute(text("SELECT current_setting('jit'), current_setting('enable_seqscan')"))
        assert after.one() == shown


def test_the_time_is_hashed_as_utc_text() -> None:
    at = dt.datetime(2024, 5, 1, 8, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert chain.body([at, None, True, 3]) == "2024-05-01 00:00:00.000005\x1f\x1f1\x1f3"


def test_a_batch_hashes_as_entries_appended_one_by_one(session_factory: Factory) -> None:
    with session_factory() as s:
        batch = service.record_many(s, [entry(1), entry(2)])
        s.commit()
        rows = s.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
    recomputed = chain.link(
        rows[1].prev_hash, chain.body([getattr(rows[1], f) for f in chain.FIELDS])
    )
    assert (batch.first_seq, batch.last_seq) == (1, 2)
    assert rows[1].prev_hash == rows[0].hash
    assert recomputed == batch.head_hash


def test_subjects_of_a_batch_are_kept(session_factory: Factory) -> None:
    with session_factory() as s:
        service.record_many(s, [entry(6), entry(12), entry(1)])
        s.commit()
        counts = s.scalars(select(AuditEntry.subjects).order_by(AuditEntry.seq)).all()
    assert counts == [1, 1, 0]


def test_an_edited_entry_is_caught(ledger: Factory, settings: Settings) -> None:
    sql(ledger, "UPDATE audit_entries SET rows = rows + 1000 WHERE seq = 7")
    assert (7, "hash") in checks(run_verify(ledger, settings))


def test_an_edited_time_is_caught(ledger: Factory, settings: Settings) -> None:
    sql(ledger, "UPDATE audit_entries SET purpose = 'x' WHERE seq = 30")
    assert (30, "hash") in checks(run_verify(ledger, settings))


def test_a_deleted_entry_is_caught(ledger: Factory, settings: Settings) -> None:
    sql(
        ledger,
        "DELETE FROM audit_subjects WHERE entry_id IN (SELECT id FROM audit_entries "
        "WHERE seq = 12)",
    )
    sql(ledger, "DELETE FROM audit_entries WHERE seq = 12")
    assert (13, "sequence") in checks(run_verify(ledger, settings))


def test_reordered_entries_are_caught(ledger: Factory, settings: Settings) -> None:
    sql(ledger, "UPDATE audit_entries SET seq = -1 WHERE seq = 20")
    sql(ledger, "UPDATE audit_entries SET seq = 20 WHERE seq = 21")
    sql(ledger, "UPDATE audit_entries SET seq = 21 WHERE seq = -1")
    found = checks(run_verify(ledger, settings))
    assert {(20, "hash"), (21, "hash")} <= found


def test_an_inserted_entry_is_caught(ledger: Factory, settings: Settings) -> None:
    sql(ledger, "UPDATE audit_entries SET seq = -seq WHERE seq > 38")
    sql(ledger, "UPDATE audit_entries SET seq = 1 - seq WHERE seq < 0")  # make room for 39
    with ledger() as s:
        row = s.scalars(select(AuditEntry).where(AuditEntry.seq == 38)).one()
        fake = {c: getattr(row, c) for c in chain.FIELDS}
        fake.update(seq=39, purpose="插入的记录", prev_hash=row.hash)
        fake["hash"] = chain.link(row.hash, chain.body([fake[f] for f in chain.FIELDS]))
        add_entry(s, fake)
        s.commit()
    assert (40, "hash") in checks(run_verify(ledger, settings))


def test_an_entry_appended_behind_the_ledgers_back_is_caught(
    ledger: Factory, settings: Settings
) -> None:
    with ledger() as s:
        row = s.scalars(select(AuditEntry).where(AuditEntry.seq == 40)).one()
        fake = {c: getattr(row, c) for c in chain.FIELDS}
        fake.update(seq=41, prev_hash=row.hash)
        fake["hash"] = chain.link(row.hash, chain.body([fake[f] for f in chain.FIELDS]))
        add_entry(s, fake)
        s.commit()
    assert (41, "head") in checks(run_verify(ledger, settings))


def test_a_truncated_tail_is_caught(ledger: Factory, settings: Settings) -> None:
    sql(
        ledger,
        "DELETE FROM audit_subjects WHERE entry_id IN (SELECT id FROM audit_entries "
        "WHERE seq > 35)",
    )
    sql(ledger, "DELETE FROM audit_entries WHERE seq > 35")
    found = checks(run_verify(ledger, settings))
    assert (35, "head") in found
    assert (40, "checkpoint") in found


def test_a_rewritten_chain_is_caught_by_its_checkpoint(ledger: Factory, settings: Settings) -> None:
    rewrite_from(ledger, 10, "改写的用途")
    found = checks(run_verify(ledger, settings))
    assert found == {(40, "checkpoint")}


def test_a_forged_checkpoint_is_caught_by_its_signature(
    ledger: Factory, settings: Settings
) -> None:
    rewrite_from(ledger, 10, "改写的用途")
    with ledger() as s:
        head = s.scalars(select(AuditEntry.hash).where(AuditEntry.seq == 40)).one()
    sql(ledger, "UPDATE audit_checkpoints SET hash = :h", h=head)
    assert checks(run_verify(ledger, settings)) == {(40, "signature")}


def test_a_deleted_prefix_without_a_purge_is_caught(ledger: Factory, settings: Settings) -> None:
    sql(ledger, "DELETE FROM audit_subjects")
    sql(ledger, "DELETE FROM audit_entries WHERE seq <= 5")
    assert (6, "anchor") in checks(run_verify(ledger, settings))


def test_checkpoints_of_another_key_are_refused(ledger: Factory, settings: Settings) -> None:
    other = Settings(data_dir=settings.data_dir / "elsewhere", database_url=settings.database_url)
    key = signing.signing_key(other).public_key()
    with ledger() as s:
        report = verify.verify_ledger(s, public_keys=[key])
    assert checks(report) == {(40, "signature")}


def test_worker_processes_verify_ranges_and_their_seams(
    ledger: Factory, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan, "CHUNK", 7)
    monkeypatch.setattr(scan, "SERVER_CHUNK", 7)
    sql(ledger, "UPDATE audit_entries SET outcome = 'ok2' WHERE seq = 21")
    report = run_verify(ledger, settings, workers=3)
    assert checks(report) == {(21, "hash")}
    assert report.entries == 40


def test_a_gap_at_a_chunk_boundary_is_caught(
    ledger: Factory, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan, "CHUNK", 10)
    monkeypatch.setattr(scan, "SERVER_CHUNK", 10)
    sql(ledger, "DELETE FROM audit_subjects")
    sql(ledger, "DELETE FROM audit_entries WHERE seq IN (10, 11)")
    assert checks(run_verify(ledger, settings, workers=2)) == {(12, "sequence")}


def test_a_batch_refuses_a_time_without_a_zone(session_factory: Factory) -> None:
    naive = dt.datetime(2024, 5, 1, 8, 0)
    with session_factory() as s, pytest.raises(Exception, match="naive datetime"):
        service.record_many(s, [entry(1), entry(2, at=naive)])


def test_a_batch_with_times_of_its_own_keeps_them(session_factory: Factory) -> None:
    at = days_ago(400).replace(microsecond=999_999)
    with session_factory() as s:
        service.record_many(s, [entry(1, at=at), entry(2, actor=GATEWAY)])
        s.commit()
        first = s.scalars(select(AuditEntry.at).where(AuditEntry.seq == 1)).one()
    assert first == at
