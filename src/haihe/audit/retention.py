"""Retention — 保存期限: removing a chain's expired prefix, anchored at a signed checkpoint.

Entries are kept ``audit_log_retention_days`` (at least 183, six months); entries that record
personal-information processing (``personal``) are kept ``audit_personal_retention_days`` (at
least 1096, three years). A purge never cuts a chain anywhere: it removes only a PREFIX that
ends at a signed checkpoint and in which every entry is past its retention. The checkpoint
stays as the anchor: verification then starts at the entry after it, whose ``prev_hash`` must
be the checkpoint's signed hash. The purge itself is an entry (``audit.purge``, naming the
last removed sequence number) appended to the same chain, so that a prefix deleted behind the
ledger's back is told apart from one removed by a purge.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.orm import Session

from haihe.audit import repository as repo
from haihe.audit import service, signing, subject_sets
from haihe.audit.models import AuditCheckpoint
from haihe.core.auth import Principal
from haihe.core.db import utcnow
from haihe.core.errors import Conflict
from haihe.core.settings import Settings

PURGE_ACTION = "audit.purge"


@dataclass(frozen=True)
class Purge:
    """A prefix of a chain removed (or, in a dry run, that would be): through which entry."""

    chain: str
    through_seq: int
    entries: int
    anchor_hash: str


def purge(
    session: Session,
    *,
    actor: Principal,
    settings: Settings,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> list[Purge]:
    """Remove every chain's expired prefix up to its last suitable checkpoint; return what.

    Conflict when the anchoring checkpoint does not check out (bad signature, or the entry it
    signed differs): the ledger must be verified before evidence is removed.
    """
    now = now or utcnow()
    log_cutoff = now - dt.timedelta(days=settings.audit_log_retention_days)
    personal_cutoff = now - dt.timedelta(days=settings.audit_personal_retention_days)
    public = signing.signing_key(settings).public_key()
    done: list[Purge] = []
    for head in repo.chain_heads(session):
        bounds = repo.seq_bounds(session, head.name)
        if bounds is None:
            continue
        low, high, _ = bounds
        kept = repo.first_unexpired(
            session, head.name, log_cutoff=log_cutoff, personal_cutoff=personal_cutoff
        )
        stop = high + 1 if kept is None else kept
        anchors = [p for p in repo.checkpoints_of(session, head.name) if low <= p.seq < stop]
        if not anchors:
            continue
        anchor = anchors[-1]
        _check_anchor(session, anchor, public)
        entries = repo.count_prefix(session, head.name, anchor.seq)
        done.append(Purge(head.name, anchor.seq, entries, anchor.hash))
        if dry_run:
            continue
        repo.delete_prefix(session, head.name, anchor.seq)
        subject_sets.remove_unused(session, settings)
        service.record(
            session,
            actor=actor,
            action=PURGE_ACTION,
            chain_name=head.name,
            detail={"through_seq": anchor.seq, "anchor_hash": anchor.hash, "entries": entries},
        )
    session.flush()
    return done


def _check_anchor(session: Session, anchor: AuditCheckpoint, public: Ed25519PublicKey) -> None:
    name = anchor.chain
    block = signing.block_of(anchor.first_seq, anchor.block_digest)
    valid = signing.is_valid(
        public, anchor.signature, name, anchor.seq, anchor.hash, anchor.at, block
    )
    signed = repo.hashes_at(session, name, [anchor.seq]).get(anchor.seq)
    if not valid or signed != anchor.hash:
        raise Conflict(
            f"chain {name}: the checkpoint at {anchor.seq} does not check out; "
            "run 'haihe audit verify' before purging"
        )
