"""What the audit tests share: a small real ledger, and tampering with it through raw SQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from haihe.audit import chain, service, signing, verify
from haihe.audit.models import AuditEntry, body_sql
from haihe.core.auth import Principal, Role
from haihe.core.settings import Settings

GATEWAY = Principal(
    kind="client", id=7, name="gw-民政", org_id=3, org_code="MZ", roles=frozenset(), system_id=4
)
OFFICER = Principal(
    kind="user", id=9, name="张三", org_id=3, org_code="MZ", roles=frozenset({Role.OPERATOR})
)


def entry(n: int, **overrides: object) -> service.NewEntry:
    """A varied entry: Chinese, tabs and newlines, JSON detail, NULLs, subjects."""
    fields: dict[str, object] = {
        "actor": GATEWAY if n % 2 else OFFICER,
        "action": "exchange.query" if n % 3 else "exchange.grant.approve",
        "outcome": "ok" if n % 5 else "refused",
        "resource_code": f"101-{n:06d}" if n % 4 else None,
        "provider_code": "GA" if n % 4 else None,
        "items": ["id_number", "姓名"] if n % 2 else [],
        "purpose": "低保\t核查\n复核" if n % 2 else None,
        "mode": "query" if n % 3 else "verify",
        "rows": n % 7,
        "subjects": [f"{n:032x}"] if n % 6 == 0 else (),
        "detail": {"n": n, "说明": None, "x": [1, 2]} if n % 3 == 0 else None,
    }
    fields.update(overrides)
    return service.NewEntry(**fields)  # type: ignore[arg-type]


def build_ledger(factory: sessionmaker[Session], n: int = 40) -> None:
    """``n`` entries, half one at a time and half in one batch, committed."""
    with factory() as s:
        for i in range(1, n // 2 + 1):
            e = entry(i)
            service.record(
                s,
                actor=e.actor,
                action=e.action,
                outcome=e.outcome,
                resource_code=e.resource_code,
                provider_code=e.provider_code,
                items=e.items,
                purpose=e.purpose,
                mode=e.mode,
                rows=e.rows,
                subjects=e.subjects,
                detail=e.detail,
            )
        service.record_many(s, [entry(i) for i in range(n // 2 + 1, n + 1)])
        s.commit()


def sign_heads(factory: sessionmaker[Session], settings: Settings) -> None:
    with factory() as s:
        service.checkpoint(s, settings=settings)
        s.commit()


def sign_heads_as_before_blocks(factory: sessionmaker[Session], settings: Settings) -> None:
    """Sign each chain's head as checkpoints were signed before blocks (migration 0012): no
    block sealed, written with SQL so that it works on a database before 0012 too."""
    key = signing.signing_key(settings)
    at = dt.datetime.now(dt.UTC)
    with factory() as s:
        for name, next_seq, head_hash in s.execute(
            text("SELECT name, next_seq, head_hash FROM audit_chains")
        ):
            s.execute(
                text(
                    "INSERT INTO audit_checkpoints (chain, seq, hash, at, key_id, signature) "
                    "VALUES (:chain, :seq, :hash, :at, :kid, :sig)"
                ),
                {
                    "chain": name,
                    "seq": next_seq - 1,
                    "hash": head_hash,
                    "at": at,
                    "kid": signing.key_id(key.public_key()),
                    "sig": signing.sign(key, name, next_seq - 1, head_hash, at),
                },
            )
        s.commit()


def run_verify(
    factory: sessionmaker[Session], settings: Settings, workers: int | None = 1
) -> verify.Report:
    key = signing.local_public_key(settings)
    with factory() as s:
        return verify.verify_ledger(s, public_keys=[key] if key else [], workers=workers)


def sql(factory: sessionmaker[Session], statement: str, **params: object) -> None:
    """Tamper: run raw SQL behind the ledger's back, committed.

    On PostgreSQL the CHECK constraint refuses an edit of the columns alone, so this is an
    attacker who can also change the schema: drop the constraint, edit, rewrite each edited
    entry's text to match its columns, put the constraint back. (On SQLite the database
    rewrites the text itself.) Either way the entry's text no longer matches its hash.
    """
    with factory() as s:
        if is_postgresql(s):
            s.execute(text("ALTER TABLE audit_entries DROP CONSTRAINT ck_audit_entries_body"))
            s.execute(text(statement), params)
            s.execute(text(f"UPDATE audit_entries SET body = {PG_TEXT} WHERE body <> {PG_TEXT}"))
            s.execute(text(f"ALTER TABLE audit_entries ADD CONSTRAINT {PG_CHECK}"))
        else:
            s.execute(text(statement), params)
        s.commit()


PG_TEXT = body_sql("postgresql")
PG_CHECK = f"ck_audit_entries_body CHECK (body = {PG_TEXT})"


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def add_entry(session: Session, values: dict[str, object]) -> None:
    """Insert an entry behind the ledger's back, with its text where the app writes it."""
    if is_postgresql(session):
        values = {**values, "body": chain.body([values[f] for f in chain.FIELDS])}
    session.add(AuditEntry(**values))


def rewrite_from(factory: sessionmaker[Session], seq: int, purpose: str) -> None:
    """Edit entry ``seq`` and recompute every later hash and the head, as a careful forger."""
    with factory() as s:
        rows = s.query(AuditEntry).filter(AuditEntry.seq >= seq).order_by(AuditEntry.seq).all()
        prev = rows[0].prev_hash
        rows[0].purpose = purpose
        for row in rows:
            row.prev_hash = prev
            entry_text = chain.body([getattr(row, f) for f in chain.FIELDS])
            if is_postgresql(s):
                row.body = entry_text
            row.hash = chain.link(prev, entry_text)
            prev = row.hash
        s.flush()
        s.execute(text("UPDATE audit_chains SET head_hash = :h"), {"h": prev})
        s.commit()


def checks(report: verify.Report) -> set[tuple[int | None, str]]:
    return {(p.seq, p.check) for p in report.problems}


def days_ago(days: int) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
