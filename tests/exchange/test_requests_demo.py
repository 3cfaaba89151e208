"""The demo's exchange step: the departments' requests end as the rules say."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from factories import ROOT, make_org, make_resource
from haihe.catalogue import service as catalogue
from haihe.core.settings import Settings
from haihe.demo.exchange import ASKS, play_out
from haihe.exchange import repository
from haihe.exchange.models import RequestStatus

NOW = dt.datetime(2026, 9, 21, 2, tzinfo=dt.UTC)


def test_play_out_grants_approves_refuses_and_escalates(
    session: Session, settings: Settings
) -> None:
    orgs = {}
    for code in sorted({a.consumer for a in ASKS} | {a.provider for a in ASKS}):
        orgs[code] = make_org(session, code=code)
    for ask in ASKS:
        unconditional = ask.outcome == "granted"
        r = make_resource(
            session,
            orgs[ask.provider],
            name_zh=ask.name_zh,
            sharing_type="unconditional" if unconditional else "conditional",
            sharing_conditions=None if unconditional else "审核后共享",
        )
        catalogue.publish(session, actor=ROOT, code=r.code)
    played = play_out(session, settings=settings, now=NOW)
    assert played.skipped == []
    assert {k: len(v) for k, v in played.outcomes.items()} == {
        "granted": 4,
        "approved": 5,
        "refused": 1,
        "overdue": 1,
        "pending": 1,
    }
    statuses = {}
    for outcome, ids in played.outcomes.items():
        for request_id in ids:
            req = repository.request_by_id(session, request_id)
            assert req is not None
            statuses.setdefault(outcome, set()).add((req.status, req.escalated_at is not None))
    assert statuses == {
        "granted": {(RequestStatus.APPROVED, False)},
        "approved": {(RequestStatus.APPROVED, False)},
        "refused": {(RequestStatus.REFUSED, False)},
        "overdue": {(RequestStatus.PENDING, True)},
        "pending": {(RequestStatus.PENDING, False)},
    }
