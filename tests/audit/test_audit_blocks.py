"""Sealed blocks: a checkpoint seals the entries since the one before by one signed digest, and
verification checks a sealed block by that digest alone — on both backends, through raw SQL."""

from __future__ import annotations

import hashlib
import logging

import pytest
from audit_support import build_ledger, checks, run_verify, sign_heads, sql
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from haihe.audit import chain, scan, signing, verify
from haihe.audit.models import AuditCheckpoint, AuditEntry
from haihe.core.settings import Settings

Factory = sessionmaker[Session]


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> int:
    """Blocks of 7 entries, so that 40 entries make six (the last of five), in pieces of 3."""
    monkeypatch.setattr(chain, "BLOCK", 7)
    monkeypatch.setattr(chain, "PIECE", 3)
    monkeypatch.setattr(scan, "CHUNK", 3)  # SQLite's chunks cut across blocks too
    monkeypatch.setattr(scan, "SERVER_CHUNK", 3)
    return 7


@pytest.fixture
def ledger(session_factory: Factory, settings: Settings, small_blocks: int) -> Factory:
    build_ledger(session_factory, 40)
    sign_heads(session_factory, settings)
    return session_factory


def points(factory: Factory) -> list[tuple[int | None, int, str | None]]:
    with factory() as s:
        rows = s.execute(
            select(
                AuditCheckpoint.first_seq, AuditCheckpoint.seq, AuditCheckpoint.block_digest
            ).order_by(AuditCheckpoint.seq)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_a_checkpoint_seals_the_entries_since_the_last_in_blocks(ledger: Factory) -> None:
    found = points(ledger)
    assert [(first, last) for first, last, _ in found] == [
        (1, 7),
        (8, 14),
        (15, 21),
        (22, 28),
        (29, 35),
        (36, 40),
    ]
    assert all(digest is not None and len(digest) == 64 for _, _, digest in found)


def test_a_blocks_digest_is_of_its_pieces_digests(monkeypatch: pytest.MonkeyPatch) -> None:
    # the format docs/exchange.md gives, for a verifier written elsewhere
    parts = [b"6:" + b"0" * 64 + b"a" * 64 + "审计".encode(), b"1:" + b"a" * 64 + b"b" * 64 + b"x"]
    entries = [("0" * 64, "a" * 64, "审计".encode()), ("a" * 64, "b" * 64, b"x")]
    in_one_piece = hashlib.sha256(hashlib.sha256(b"".join(parts)).digest()).hexdigest()
    assert chain.block_digest(entries) == in_one_piece
    monkeypatch.setattr(chain, "PIECE", 1)
    in_two = hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).hexdigest()
    assert chain.block_digest(entries) == in_two


def test_the_databases_digest_is_the_one_python_computes(ledger: Factory) -> None:
    # the varied entries (Chinese, tabs, newlines, NULLs, JSON) join in the database to the
    # same bytes as chain.block_part makes of them, and the checkpoint signed that digest
    with ledger() as s:
        rows = s.execute(
            select(AuditEntry.prev_hash, AuditEntry.hash, AuditEntry.body)
            .where(AuditEntry.seq.between(8, 14))
            .order_by(AuditEntry.seq)
        ).all()
        raw = s.connection().connection.dbapi_connection
        cur = raw.cursor()  # type: ignore[union-attr]
        found = scan.block_digest(cur, s.get_bind().dialect.name, "main", 8, 14)
    expected = chain.block_digest((p, h, b.encode()) for p, h, b in rows)
    assert found == (7, 8, 14, expected)
    assert (8, 14, expected) in points(ledger)


def test_a_sealed_ledger_is_verified_by_its_blocks(ledger: Factory, settings: Settings) -> None:
    report = run_verify(ledger, settings)
    assert report.problems == []
    assert (report.entries, report.chains[0].sealed, report.chains[0].rechecked) == (40, 40, 0)


def test_entries_after_the_last_checkpoint_are_verified_one_by_one(
    ledger: Factory, settings: Settings
) -> None:
    build_ledger(ledger, 6)
    report = run_verify(ledger, settings)
    assert report.problems == []
    assert (report.entries, report.chains[0].sealed) == (46, 40)


def test_an_edit_inside_a_sealed_block_is_found_entry_by_entry(
    ledger: Factory, settings: Settings
) -> None:
    sql(ledger, "UPDATE audit_entries SET rows = rows + 1000 WHERE seq = 17")
    report = run_verify(ledger, settings)
    assert checks(report) == {(17, "hash")}
    assert report.chains[0].sealed == 33  # every block but 15-21, which was walked


def test_sealed_blocks_split_over_worker_processes(ledger: Factory, settings: Settings) -> None:
    sql(ledger, "UPDATE audit_entries SET outcome = 'ok2' WHERE seq = 30")
    report = run_verify(ledger, settings, workers=3)
    assert checks(report) == {(30, "hash")}
    assert (report.entries, report.chains[0].sealed) == (40, 33)


def test_a_deleted_entry_inside_a_sealed_block_is_caught(
    ledger: Factory, settings: Settings
) -> None:
    sql(ledger, "DELETE FROM audit_subjects")
    sql(ledger, "DELETE FROM audit_entries WHERE seq = 8")  # a block's first entry
    found = checks(run_verify(ledger, settings, workers=2))
    assert (9, "sequence") in found


def test_a_block_whose_digest_was_emptied_is_caught_by_its_signature(
    ledger: Factory, settings: Settings
) -> None:
    sql(ledger, "UPDATE audit_checkpoints SET block_digest = NULL WHERE seq = 14")
    report = run_verify(ledger, settings)
    assert checks(report) == {(14, "signature")}
    assert report.chains[0].sealed == 33  # its entries were walked instead, and are intact


def test_a_block_unlike_its_signed_digest_is_caught_though_each_entry_follows_the_last(
    ledger: Factory, settings: Settings
) -> None:
    # only the key's holder could sign a digest that is not the block's: the check is there
    # all the same, and says which block
    key = signing.signing_key(settings)
    with ledger() as s:
        point = s.scalars(select(AuditCheckpoint).where(AuditCheckpoint.seq == 21)).one()
        point.block_digest = "0" * 64
        point.signature = signing.sign(
            key, "main", 21, point.hash, point.at, (point.first_seq or 0, point.block_digest)
        )
        s.commit()
    report = run_verify(ledger, settings)
    assert [(p.seq, p.check) for p in report.problems] == [(21, "checkpoint")]
    assert "15-21" in report.problems[0].message


def test_rows_the_database_joins_out_of_order_are_no_problem(
    ledger: Factory, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # should a database ever join a block's rows in another order, its digest differs; the
    # rows, fetched in order, are hashed again in Python before anything is reported
    # (on SQLite the first row's prefix comes from the block's last row instead)
    for name in ("_BLOCK_PG", "_BLOCK_SQLITE"):
        reversed_sql = getattr(scan, name).replace("ORDER BY seq", "ORDER BY seq DESC")
        assert reversed_sql != getattr(scan, name)
        monkeypatch.setattr(scan, name, reversed_sql)
    report = run_verify(ledger, settings)
    assert report.problems == []
    assert (report.entries, report.chains[0].sealed) == (40, 0)


def test_a_checkpoint_does_not_seal_entries_that_do_not_verify(
    session_factory: Factory, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    build_ledger(session_factory, 12)
    sql(session_factory, "UPDATE audit_entries SET purpose = '改过' WHERE seq = 5")
    with caplog.at_level(logging.WARNING, logger="haihe.audit"):
        sign_heads(session_factory, settings)
    assert points(session_factory) == [(None, 12, None)]  # the head signed, nothing sealed
    assert "entries 1-12 do not verify" in caplog.text
    assert checks(run_verify(session_factory, settings)) == {(5, "hash")}


def test_the_next_checkpoint_follows_on_from_the_last(ledger: Factory, settings: Settings) -> None:
    build_ledger(ledger, 10)
    sign_heads(ledger, settings)
    assert [(first, last) for first, last, _ in points(ledger)][-3:] == [
        (36, 40),
        (41, 47),
        (48, 50),
    ]
    assert run_verify(ledger, settings).chains[0].sealed == 50


def test_a_purge_leaves_whole_blocks_and_the_rest_still_verify_by_them(
    ledger: Factory, settings: Settings
) -> None:
    # a purge cuts at a checkpoint, so every block after it is whole
    sql(ledger, "DELETE FROM audit_subjects")
    sql(ledger, "DELETE FROM audit_entries WHERE seq <= 14")
    report = run_verify(ledger, settings)
    assert (report.entries, report.chains[0].sealed) == (26, 26)
    assert checks(report) == {(15, "anchor")}  # no purge entry records the removal


@pytest.mark.parametrize(
    ("sizes", "processes"),
    [([("r", 100)], 3), ([("b", 7)] * 6 + [("r", 5)], 2), ([("r", 3), ("b", 7), ("r", 40)], 4)],
)
def test_shares_cover_every_segment_in_order(sizes: list[tuple[str, int]], processes: int) -> None:
    segments: list[scan.Segment] = []
    at = 1
    for kind, n in sizes:
        segments.append(scan.Block(at, at + n - 1, "d", "h") if kind == "b" else (at, at + n - 1))
        at += n
    shares = verify._shares(segments, processes)
    assert 1 <= len(shares) <= processes
    flat = [s for share in shares for s in share]
    spans = [(s.first, s.last) if isinstance(s, scan.Block) else s for s in flat]
    assert [lo for lo, _ in spans] == [1] + [hi + 1 for _, hi in spans[:-1]]  # contiguous
    assert spans[-1][1] == at - 1
    assert [s for s in flat if isinstance(s, scan.Block)] == [
        s for s in segments if isinstance(s, scan.Block)
    ]  # blocks go whole
    sizes_of = [sum(verify._size(s) for s in share) for share in shares]
    assert max(sizes_of) - min(sizes_of) <= 7  # a block's length at most
