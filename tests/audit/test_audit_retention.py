"""Retention: only an expired prefix ending at a signed checkpoint goes; verification holds."""

from __future__ import annotations

import os
import stat

from audit_support import checks, days_ago, entry, run_verify, sign_heads, sql
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from factories import ROOT
from haihe.audit import retention, service, signing
from haihe.audit.models import AuditCheckpoint, AuditEntry
from haihe.core.settings import Settings

Factory = sessionmaker[Session]


def _old_ledger(factory: Factory, settings: Settings, *, personal_at: int | None = None) -> None:
    """Entries 1-10 from 200 days ago, signed at 10; entries 11-12 from today."""
    old = [entry(i, at=days_ago(200), subjects=()) for i in range(1, 11)]
    if personal_at is not None:
        old[personal_at - 1] = entry(personal_at, at=days_ago(200), personal=True)
    with factory() as s:
        service.record_many(s, old)
        s.commit()
    sign_heads(factory, settings)
    with factory() as s:
        service.record_many(s, [entry(11, subjects=()), entry(12, subjects=())])
        s.commit()
    sign_heads(factory, settings)


def _purge(factory: Factory, settings: Settings, dry_run: bool = False) -> list[retention.Purge]:
    with factory() as s:
        done = retention.purge(s, actor=ROOT, settings=settings, dry_run=dry_run)
        s.commit()
    return done


def _seqs(factory: Factory) -> list[int]:
    with factory() as s:
        return list(s.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)))


def test_a_purge_removes_the_expired_prefix_and_keeps_its_anchor(
    session_factory: Factory, settings: Settings
) -> None:
    _old_ledger(session_factory, settings)
    done = _purge(session_factory, settings)
    assert [(p.through_seq, p.entries) for p in done] == [(10, 10)]
    assert _seqs(session_factory) == [11, 12, 13]
    with session_factory() as s:
        anchors = s.scalars(select(AuditCheckpoint.seq).order_by(AuditCheckpoint.seq)).all()
        last = s.scalars(select(AuditEntry.action).where(AuditEntry.seq == 13)).one()
    assert anchors == [10, 12]
    assert last == retention.PURGE_ACTION
    assert run_verify(session_factory, settings).problems == []


def test_a_dry_run_removes_nothing(session_factory: Factory, settings: Settings) -> None:
    _old_ledger(session_factory, settings)
    assert [p.through_seq for p in _purge(session_factory, settings, dry_run=True)] == [10]
    assert len(_seqs(session_factory)) == 12


def test_a_personal_entry_holds_the_prefix_for_three_years(
    session_factory: Factory, settings: Settings
) -> None:
    _old_ledger(session_factory, settings, personal_at=4)
    sql(session_factory, "DELETE FROM audit_checkpoints WHERE seq = 12")
    assert _purge(session_factory, settings) == []


def test_entries_after_the_last_checkpoint_are_never_purged(
    session_factory: Factory, settings: Settings
) -> None:
    with session_factory() as s:
        service.record_many(s, [entry(i, at=days_ago(400)) for i in range(1, 6)])
        s.commit()
    assert _purge(session_factory, settings) == []
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == 5


def test_a_purged_prefix_cut_again_behind_the_ledgers_back_is_caught(
    session_factory: Factory, settings: Settings
) -> None:
    _old_ledger(session_factory, settings)
    _purge(session_factory, settings)
    sql(session_factory, "DELETE FROM audit_entries WHERE seq = 11")
    assert (12, "anchor") in checks(run_verify(session_factory, settings))


def test_the_signing_key_is_made_once_for_the_owner_only(settings: Settings) -> None:
    first = signing.key_id(signing.signing_key(settings).public_key())
    again = signing.key_id(signing.signing_key(settings).public_key())
    mode = stat.S_IMODE(os.stat(signing.key_path(settings)).st_mode)
    assert first == again
    assert mode == 0o600


def test_a_checkpoint_signs_only_chains_that_moved(
    session_factory: Factory, settings: Settings
) -> None:
    with session_factory() as s:
        service.record_many(s, [entry(1), entry(2)])
        s.commit()
    with session_factory() as s:
        made = [(p.chain, p.seq) for p in service.checkpoint(s, settings=settings)]
        again = service.checkpoint(s, settings=settings)
        s.commit()
    assert made == [("main", 2)]
    assert again == []
