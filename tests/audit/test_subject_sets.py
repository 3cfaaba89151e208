"""Subject sets: a batch's persons kept once, found by the citizen's view before and after they
are indexed, covered by their entries' hashes, removed with the last entry that used them."""

from __future__ import annotations

import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from audit_support import days_ago, entry, run_verify, sign_heads
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Delete, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from factories import ROOT
from haihe.audit import chain, citizen, retention, service, subject_sets
from haihe.audit.models import AuditEntry, AuditEntrySet, AuditSetMember, AuditSubjectSet
from haihe.core.auth import Principal
from haihe.core.masking import pseudonym_bytes_of_ids, pseudonymise_ids
from haihe.core.settings import Settings

Factory = sessionmaker[Session]

PEOPLE = [f"{i:032x}" for i in range(1, 11)]  # ten pseudonyms


def _resident(token: str) -> Principal:
    return Principal(
        kind="user", id=99, name="居民", org_id=None, org_code=None, roles=frozenset(),
        subject=token,
    )  # fmt: skip


def _batch(factory: Factory, settings: Settings, tokens: list[str], *, at_days: int = 0) -> int:
    """Keep ``tokens`` as a set and append three entries using it (a chunk's three sources)."""
    with factory() as s:
        kept = subject_sets.keep_set(s, settings, reversed(tokens))
        assert kept is not None
        at = days_ago(at_days) if at_days else None
        service.record_many(
            s,
            [
                entry(i, subjects=(), subject_set=kept, mode="verify", resource_code=f"R{i}", at=at)
                for i in (1, 2, 3)
            ],
        )
        s.commit()
        return kept.id


def _uses(factory: Factory, settings: Settings, token: str) -> list[str]:
    with factory() as s:
        found = citizen.uses_of_my_data(s, actor=_resident(token), settings=settings)
        return sorted(str(e.resource_code) for e in found)


def test_a_set_is_kept_once_and_its_entries_carry_its_size_and_digest(
    session_factory: Factory, settings: Settings
) -> None:
    first = _batch(session_factory, settings, PEOPLE)
    again = _batch(session_factory, settings, list(reversed(PEOPLE)))  # the same persons
    assert again == first
    with session_factory() as s:
        rows = s.execute(select(AuditEntry.subjects, AuditEntry.subjects_digest)).all()
        sets = s.scalars(select(AuditSubjectSet)).all()
        links = s.scalar(select(func.count()).select_from(AuditEntrySet))
    assert len(sets) == 1
    assert sets[0].count == 10
    assert sets[0].indexed_at is None
    assert set(rows) == {(10, chain.subjects_digest(PEOPLE))}
    assert len(rows) == 6
    assert links == 6
    assert subject_sets.set_file(settings, sets[0].digest).is_file()
    with session_factory() as s:
        kept = subject_sets.keep_set(s, settings, PEOPLE)
        both = [entry(1, subjects=["a" * 32], subject_set=kept)]
        with pytest.raises(ValueError, match="subjects or a subject set"):
            service.record_many(s, both)


def test_the_citizens_view_finds_a_batch_before_and_after_it_is_indexed(
    session_factory: Factory, settings: Settings
) -> None:
    _batch(session_factory, settings, PEOPLE)
    assert _uses(session_factory, settings, PEOPLE[3]) == ["R1", "R2", "R3"]
    assert _uses(session_factory, settings, "f" * 32) == []
    seen: list[tuple[int, int]] = []
    done = subject_sets.index_pending(
        session_factory, settings, slice_rows=3, progress=lambda d, t: seen.append((d, t))
    )
    assert (done.sets, done.members) == (1, 10)
    assert seen == [(3, 10), (6, 10), (9, 10), (10, 10)]  # four slices, four transactions
    with session_factory() as s:
        members = sorted(s.scalars(select(AuditSetMember.token)))
        kept = s.scalars(select(AuditSubjectSet)).one()
    assert members == PEOPLE
    assert kept.indexed_rows == 10
    assert kept.indexed_at is not None
    assert not subject_sets.set_file(settings, kept.digest).exists()
    assert _uses(session_factory, settings, PEOPLE[3]) == ["R1", "R2", "R3"]
    assert _uses(session_factory, settings, PEOPLE[9]) == ["R1", "R2", "R3"]
    assert _uses(session_factory, settings, "f" * 32) == []
    again = subject_sets.index_pending(session_factory, settings)
    assert (again.sets, again.members) == (0, 0)


def test_an_indexer_resumes_where_a_stopped_one_left_and_never_inserts_twice(
    session_factory: Factory, settings: Settings
) -> None:
    set_id = _batch(session_factory, settings, PEOPLE)
    subject_sets.index_pending(session_factory, settings, slice_rows=4)
    with session_factory() as s:  # as if it stopped after its first slice
        s.execute(delete_members(set_id, PEOPLE[4:]))
        s.execute(update(AuditSubjectSet).values(indexed_rows=4, indexed_at=None))
        s.commit()
    digest = chain.subjects_digest(PEOPLE)
    path = subject_sets.set_file(settings, digest)
    _rewrite(path, sorted(PEOPLE))
    # a second indexer that read the set before the first claimed the slice gets nothing
    with session_factory() as s:
        assert not subject_sets._claim(s, set_id, 0, 4, 10)
    done = subject_sets.index_pending(session_factory, settings, slice_rows=4)
    assert done.members == 6
    with session_factory() as s:
        assert sorted(s.scalars(select(AuditSetMember.token))) == PEOPLE


def delete_members(set_id: int, tokens: list[str]) -> Delete:
    return delete(AuditSetMember).where(
        AuditSetMember.set_id == set_id, AuditSetMember.token.in_(tokens)
    )


def _rewrite(path: os.PathLike[str], tokens: list[str]) -> None:
    pq.write_table(pa.table({"token": pa.array(tokens, pa.string())}), path)


def test_a_changed_set_is_caught_pending_or_indexed(
    session_factory: Factory, settings: Settings
) -> None:
    _batch(session_factory, settings, PEOPLE)
    digest = chain.subjects_digest(PEOPLE)
    with session_factory() as s:
        assert subject_sets.verify_sets(s, settings) == []
    _rewrite(subject_sets.set_file(settings, digest), sorted(PEOPLE[1:]))  # one person dropped
    with session_factory() as s:
        found = subject_sets.verify_sets(s, settings)
    assert len(found) == 1
    assert "9 members do not match" in found[0]
    _rewrite(subject_sets.set_file(settings, digest), sorted(PEOPLE))
    subject_sets.index_pending(session_factory, settings)
    with session_factory() as s:
        assert subject_sets.verify_sets(s, settings) == []
        s.execute(
            update(AuditSetMember).where(AuditSetMember.token == PEOPLE[0]).values(token="e" * 32)
        )
        s.commit()
        found = subject_sets.verify_sets(s, settings)
    assert len(found) == 1
    assert "do not match the digest" in found[0]


def test_a_purge_removes_a_set_with_the_last_entry_that_used_it(
    session_factory: Factory, settings: Settings
) -> None:
    old = _batch(session_factory, settings, PEOPLE, at_days=1200)  # past 3 years
    sign_heads(session_factory, settings)
    recent = _batch(session_factory, settings, PEOPLE[:4])
    sign_heads(session_factory, settings)
    subject_sets.index_pending(session_factory, settings)
    with session_factory() as s:
        retention.purge(s, actor=ROOT, settings=settings)
        s.commit()
        left = s.scalars(select(AuditSubjectSet.id)).all()
        members = s.scalar(select(func.count()).select_from(AuditSetMember))
    assert old != recent
    assert left == [recent]
    assert members == 4
    assert _uses(session_factory, settings, PEOPLE[8]) == []
    assert _uses(session_factory, settings, PEOPLE[0]) == ["R1", "R2", "R3"]
    assert run_verify(session_factory, settings).problems == []


def test_a_rolled_back_sets_file_is_removed_once_old(
    session_factory: Factory, settings: Settings
) -> None:
    with session_factory() as s:
        kept = subject_sets.keep_set(s, settings, PEOPLE)
        assert kept is not None
        s.rollback()
    path = subject_sets.set_file(settings, kept.digest)
    assert path.is_file()
    assert subject_sets.index_pending(session_factory, settings).orphans == 0  # may be in use
    hour_ago = time.time() - 3700
    os.utime(path, (hour_ago, hour_ago))
    assert subject_sets.index_pending(session_factory, settings).orphans == 1
    assert not path.exists()
    # a file written ahead for persons whose set is kept and indexed already goes at once
    _batch(session_factory, settings, PEOPLE)
    subject_sets.index_pending(session_factory, settings)
    subject_sets.write_set_file(settings, subject_sets.prepare_set(PEOPLE))
    assert path.exists()
    assert subject_sets.index_pending(session_factory, settings).orphans == 1
    assert not path.exists()


@given(
    bodies=st.lists(st.integers(min_value=0, max_value=10**17 - 1), max_size=40),
    repeated=st.integers(min_value=0, max_value=10),
)
def test_a_set_prepared_from_pseudonym_bytes_is_the_set_of_their_texts(
    bodies: list[int], repeated: int
) -> None:
    """A job's sets are sorted and digested as bytes: the same members, order and digest as
    the set of the pseudonyms' texts (persons repeated in a chunk counted once)."""
    key = bytes(range(32))
    ids = np.array(bodies + bodies[:repeated], dtype=np.int64)
    fast = subject_sets.prepare_pseudonym_set(pseudonym_bytes_of_ids(key, ids))
    texts = pseudonymise_ids(key, ids)
    slow = subject_sets.prepare_set(texts)
    assert fast.ordered.to_pylist() == slow.ordered.to_pylist() == sorted(set(texts))
    assert fast.digest == slow.digest


@given(
    st.lists(st.integers(0, 3), min_size=1, max_size=40),
    st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=40),
)
def test_pseudonyms_sharing_their_first_64_bits_are_sorted_by_all_128(
    firsts: list[int], seconds: list[int]
) -> None:
    """The sort goes by the first half and falls back to both only when two differ after it:
    pseudonyms made to share first halves (and some to repeat whole) still come out in their
    text's order, once each."""
    pairs = [(firsts[i % len(firsts)], seconds[i % len(seconds)]) for i in range(40)]
    raw = b"".join(a.to_bytes(8, "big") + b.to_bytes(8, "big") for a, b in pairs)
    prepared = subject_sets.prepare_pseudonym_set(raw)
    texts = [raw[k : k + 16].hex() for k in range(0, len(raw), 16)]
    assert prepared.ordered.to_pylist() == sorted(set(texts))
    assert prepared.digest == subject_sets.prepare_set(texts).digest
