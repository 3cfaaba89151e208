"""Single checks — 单笔核验: a counter clerk's question about one or a few persons.

Served from each source version's indexed row store (``engine.rowstore``, SQLite beside the
Parquet): one ``SELECT … LIMIT 1`` per subject and check on the indexed ID-number item, tens of
microseconds each, where a DuckDB point query costs about a millisecond (DESIGN.md). Conditions
compile from the rule file to SQLite text comparisons that mean what ``jobs`` compiles for Ibis:
dates as ISO text, timestamps compared by their date part.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from haihe.core.auth import Principal
from haihe.core.errors import InvalidInput, NotFound
from haihe.core.identity import compose_id, normalise_id
from haihe.core.masking import mask_id_number, pseudonymise
from haihe.core.settings import Settings
from haihe.engine import make_rowstore, make_store
from haihe.engine.rowstore import RowTable, quote
from haihe.verification import register, service
from haihe.verification.rules import Check, get_rule
from haihe.verification.schemas import CheckOut, SourceOut, SubjectAnswer, SubjectIn
from haihe.verification.service import UNKNOWN, BoundSource, Plan

ACTION = "verification.check"
_SQL_OPS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def check_subjects(
    session: Session,
    *,
    actor: Principal,
    settings: Settings,
    rule_name: str,
    subjects: Sequence[SubjectIn],
    params: Mapping[str, Any],
    request_id: str,
    today: dt.date | None = None,
) -> CheckOut:
    """Return one answer per subject, in order; audit the check. Flushes, never commits.

    NotFound for an unknown rule or a source without a current version, Conflict for an unbound
    source, Forbidden (audited) without verify grants, InvalidInput for bad parameters. An
    invalid ID number is answered ``unknown`` with its reason, not refused — unless the subject
    gives a name (and birth date, region) that identity matching links to one person in the
    register (``register``): then that person is checked, with the confidence of the match and
    the reasons ``id_…;identity_matched``.
    """
    rule = get_rule(rule_name)
    plan = service.prepare(
        session,
        actor=actor,
        rule=rule,
        params=params,
        action=ACTION,
        request_id=request_id,
        today=today,
    )
    tables = {role: _table(settings, s) for role, s in plan.sources.items()}
    key = settings.secret_key_bytes()
    answers, tokens, counts = [], [], Counter[str]()
    identity = _Identity(session, actor, settings)
    for ref, subject in enumerate(subjects):
        raw = subject.id_number
        prefix: list[str] = []
        confidence = 1.0
        try:
            number = normalise_id(raw, today=today)
        except InvalidInput as exc:
            problem = f"id_{exc.details['reason']}"
            found = identity.match(subject) if subject.name else None
            if found is None or found.body < 0:
                verdict, reasons = UNKNOWN, [problem, *([found.how] if found else [])]
                shown = mask_id_number(raw) if len(raw) >= 10 else "***"
                counts[verdict] += 1
                answers.append(
                    SubjectAnswer(
                        ref=ref,
                        id_number=shown,
                        verdict=verdict,
                        reasons=reasons,
                        confidence=found.confidence if found else 0.0,
                    )
                )
                continue
            number, confidence = compose_id(found.body), found.confidence
            prefix = [problem, "identity_matched"]
        body = int(number[:17])
        held: dict[str, bool | None] = {
            c.name: _exists(tables[c.source or ""], plan, c, number)
            for c in plan.checks
            if c.kind == "exists"
        }
        held.update(service.age_checks(plan, body))
        verdict, reasons = service.decide(rule, _ordered(plan, held))
        reasons = [*reasons, *prefix]
        shown = mask_id_number(number)
        tokens.append(pseudonymise(key, number))
        counts[verdict] += 1
        answers.append(
            SubjectAnswer(
                ref=ref, id_number=shown, verdict=verdict, reasons=reasons, confidence=confidence
            )
        )
    identity.audit(key)
    service.record_checks(
        session,
        actor=actor,
        plan=plan,
        action=ACTION,
        subjects=tokens,
        verdicts=counts,
        request_id=request_id,
    )
    return CheckOut(
        rule=rule.name,
        version=rule.version,
        params={k: v.isoformat() if isinstance(v, dt.date) else v for k, v in plan.params.items()},
        sources=[SourceOut(**s) for s in plan.consulted()],
        answers=answers,
        request_id=request_id,
    )


class _Identity:
    """Identity matching for a check's subjects whose ID fails (``register``), the register
    resolved on first need; ``audit`` records its use as batch jobs do."""

    def __init__(self, session: Session, actor: Principal, settings: Settings) -> None:
        self._session, self._actor, self._settings = session, actor, settings
        self._source: BoundSource | str | None = None
        self.tried: int = 0
        self.found: list[int] = []

    def match(self, subject: SubjectIn) -> register.Match:
        if self._source is None:
            self._source = service.identity_source(self._session, actor=self._actor)
        if isinstance(self._source, str):
            return register.Match(-1, 0.0, self._source)
        path = register.ensure_index(self._settings, self._source.code, self._source.version)
        found = register.match_one(
            path,
            id_number=subject.id_number,
            name=subject.name,
            birth_date=subject.birth_date.isoformat() if subject.birth_date else None,
            region=subject.region,
        )
        self.tried += 1
        if found.body >= 0:
            self.found.append(found.body)
        return found

    def audit(self, key: bytes) -> None:
        if self.tried and isinstance(self._source, BoundSource):
            service.record_match(
                self._session,
                actor=self._actor,
                source=self._source,
                subjects=[pseudonymise(key, compose_id(b)) for b in self.found],
                tried=self.tried,
                matched=len(self.found),
            )


def _ordered(plan: Plan, held: Mapping[str, bool | None]) -> dict[str, bool | None]:
    return {c.name: held[c.name] for c in plan.checks}


def _table(settings: Settings, source: BoundSource) -> RowTable:
    """Return the source version's row store, built first for versions loaded before it."""
    rowstore = make_rowstore(settings)
    try:
        return rowstore.open(source.code, source.version)
    except NotFound:
        store = make_store(settings)
        rowstore.ensure(
            store,
            store.manifest(source.code, source.version),
            keys=list(source.keys),
            indexed=list(source.id_items),
        )
    return rowstore.open(source.code, source.version)


def _exists(table: RowTable, plan: Plan, check: Check, number: str) -> bool:
    source = plan.sources[check.source or ""]
    where, params = condition_sql(source, check, plan.params)
    page = table.query(
        columns=[source.id_item],
        where=f"{quote(source.id_item)} = ? AND {where}",
        params=[number, *params],
        limit=1,
    )
    return bool(page.rows)


def condition_sql(
    source: BoundSource, check: Check, params: Mapping[str, Any]
) -> tuple[str, list[Any]]:
    """Return a check's conditions as an SQLite predicate on the row store, and its values."""
    parts: list[str] = ["1 = 1"]
    values: list[Any] = []
    for cond in check.where:
        column = quote(cond.item)
        kind = source.types[cond.item]
        value = cond.resolved(params)
        if kind.startswith("timestamp") and isinstance(value, dt.date):
            column = f"substr({column}, 1, 10)"
        if cond.op == "in":
            listed = list(value)
            parts.append(f"{column} IN ({', '.join('?' for _ in listed)})")
            values.extend(_sqlite(v) for v in listed)
        else:
            parts.append(f"{column} {_SQL_OPS[cond.op]} ?")
            values.append(_sqlite(value))
    return " AND ".join(parts), values


def _sqlite(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value
