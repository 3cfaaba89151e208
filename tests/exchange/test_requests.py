"""Access requests, decisions and grants through the service: the rules of DESIGN.md."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from factories import ROOT, make_org, make_resource, make_system, make_user
from haihe.audit.models import AuditEntry
from haihe.catalogue import service as catalogue
from haihe.catalogue.models import SharingMode
from haihe.core.auth import Principal, Role
from haihe.core.calendar import DayEntry, DayKind, set_days
from haihe.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from haihe.exchange import decisions, repository, service
from haihe.exchange.models import GrantBasis, GrantStatus, RequestStatus
from haihe.exchange.schemas import ApproveIn, LegalBasisIn, RenewIn, RequestIn
from haihe.orgs.auth import principal_of_user
from haihe.orgs.models import User

# Monday 2026-09-21, 10:00 in Tianjin.
NOW = dt.datetime(2026, 9, 21, 2, 0, tzinfo=dt.UTC)


def who(user: User) -> Principal:
    principal = principal_of_user(user)
    assert principal is not None
    return principal


@dataclass
class World:
    rs_admin: Principal
    rs_op: Principal
    wjw_admin: Principal
    wjw_op: Principal
    mz_admin: Principal
    deaths: str  # conditional
    districts: str  # unconditional
    records: str  # not shared
    draft: str


@pytest.fixture
def w(session: Session) -> World:
    rs, wjw, mz = make_org(session, code="RS"), make_org(session, code="WJW"), make_org(session)
    make_system(session, rs, code="pension")
    users = {
        "rs_admin": make_user(session, Role.ORG_ADMIN, org=rs),
        "rs_op": make_user(session, Role.OPERATOR, org=rs),
        "wjw_admin": make_user(session, Role.ORG_ADMIN, org=wjw),
        "wjw_op": make_user(session, Role.OPERATOR, org=wjw),
        "mz_admin": make_user(session, Role.ORG_ADMIN, org=mz),
    }
    deaths = make_resource(session, wjw, sharing_modes=["query", "verify"])
    districts = make_resource(
        session, wjw, sharing_type="unconditional", sharing_conditions=None, legal_basis=None
    )
    records = make_resource(
        session,
        wjw,
        sharing_type="not_shared",
        sharing_conditions=None,
        legal_basis="涉及个人隐私",
        sharing_modes=[],
    )
    draft = make_resource(session, wjw)
    for r in (deaths, districts, records):
        catalogue.publish(session, actor=ROOT, code=r.code)
    session.commit()
    return World(
        **{k: who(u) for k, u in users.items()},
        deaths=deaths.code,
        districts=districts.code,
        records=records.code,
        draft=draft.code,
    )


def ask(code: str, **overrides: object) -> RequestIn:
    fields: dict[str, object] = {
        "resource_code": code,
        "items": ["id_number", "death_date"],
        "purpose": "养老金领取资格核查，发现死亡后停发",
        "modes": ["verify"],
        "duration_days": 365,
    }
    fields.update(overrides)
    return RequestIn.model_validate(fields)


def actions(session: Session) -> list[tuple[str, str]]:
    """The exchange's entries in the ledger, in order (other domains record their own)."""
    rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    return [(r.action, r.outcome) for r in rows if r.action.startswith("exchange.")]


# ---------------------------------------------------------------- by sharing type


def test_unconditional_is_granted_at_once_and_audited(session: Session, w: World) -> None:
    req = service.submit_request(session, actor=w.rs_op, data=ask(w.districts), now=NOW)
    assert req.status is RequestStatus.APPROVED
    grant = repository.grant_of_request(session, req.id)
    assert grant is not None
    assert grant.basis is GrantBasis.UNCONDITIONAL
    assert grant.expires_at == NOW + dt.timedelta(days=365)
    assert grant.unmasked_items == []
    assert actions(session) == [("exchange.request.submit", "ok"), ("exchange.grant.approve", "ok")]
    entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert entry is not None
    assert entry.provider_code == "WJW"
    assert entry.purpose == "养老金领取资格核查，发现死亡后停发"
    assert entry.mode == "verify"


def test_the_new_grant_is_what_the_gateway_finds(session: Session, w: World) -> None:
    service.submit_request(session, actor=w.rs_op, data=ask(w.districts), now=NOW)
    resource = catalogue.get_resource(session, actor=ROOT, code=w.districts)
    grant = service.grant_for(session, actor=w.rs_admin, resource=resource, mode=SharingMode.VERIFY)
    assert grant.items == ["id_number", "death_date"]


def test_conditional_waits_ten_working_days_skipping_holidays(session: Session, w: World) -> None:
    set_days(
        session,
        [
            DayEntry(dt.date(2026, 10, d), DayKind.HOLIDAY, "国庆节") for d in range(1, 8)
        ]  # illustrative, not the official arrangement
        + [DayEntry(dt.date(2026, 10, 10), DayKind.WORKDAY, "调休")],
    )
    req = service.submit_request(session, actor=w.rs_admin, data=ask(w.deaths), now=NOW)
    assert req.status is RequestStatus.PENDING
    # Sept 22-25, 28-30 (7), Oct 1-7 off, Oct 8, 9 (9), Oct 10 Saturday worked (10).
    assert req.due_on == dt.date(2026, 10, 10)


def test_not_shared_is_refused_until_the_platform_admin_records_a_legal_basis(
    session: Session, w: World
) -> None:
    req = service.submit_request(session, actor=w.rs_admin, data=ask(w.records), now=NOW)
    assert req.status is RequestStatus.REFUSED
    assert "不予共享" in (req.decision_note or "")
    with pytest.raises(Forbidden):
        decisions.decide_legal_basis(
            session, actor=w.wjw_admin, request_id=req.id, data=LegalBasisIn(legal_basis="x")
        )
    data = LegalBasisIn(legal_basis="《社会保险法》第十六条")
    grant = decisions.decide_legal_basis(session, actor=ROOT, request_id=req.id, data=data)
    assert grant.basis is GrantBasis.LEGAL_BASIS
    assert grant.legal_basis == "《社会保险法》第十六条"
    assert req.status is RequestStatus.APPROVED
    with pytest.raises(Conflict, match="already decided"):
        decisions.decide_legal_basis(session, actor=ROOT, request_id=req.id, data=data)


# ---------------------------------------------------------------- bad requests


@pytest.mark.parametrize(
    ("overrides", "error", "words"),
    [
        ({"items": ["id_number", "salary"]}, InvalidInput, "no data item salary"),
        ({"items": []}, InvalidInput, "at least one data item"),
        ({"modes": ["bulk"]}, InvalidInput, "not offered by bulk"),
        ({"modes": []}, InvalidInput, "at least one mode"),
        ({"system_code": "nope"}, NotFound, "no information system 'nope'"),
        ({"scope": [{"item": "salary", "op": "eq", "value": 1}]}, InvalidInput, "no such item"),
        ({"consumer_org_code": "WJW"}, Forbidden, "only the org admins and operators of WJW"),
    ],
)
def test_a_bad_request_says_what_to_fix(
    session: Session, w: World, overrides: dict[str, object], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        service.submit_request(session, actor=w.rs_op, data=ask(w.deaths, **overrides))


def test_drafts_cannot_be_requested(session: Session, w: World) -> None:
    with pytest.raises(InvalidInput, match="is draft; only published"):
        service.submit_request(session, actor=ROOT, data=ask(w.draft, consumer_org_code="RS"))


def test_another_orgs_draft_reads_as_missing(session: Session, w: World) -> None:
    with pytest.raises(NotFound):
        service.submit_request(session, actor=w.rs_op, data=ask(w.draft))


def test_a_provider_does_not_request_its_own_data(session: Session, w: World) -> None:
    with pytest.raises(InvalidInput, match="provides"):
        service.submit_request(session, actor=w.wjw_admin, data=ask(w.deaths))


def test_a_second_pending_request_is_a_conflict(session: Session, w: World) -> None:
    first = service.submit_request(session, actor=w.rs_op, data=ask(w.deaths))
    with pytest.raises(Conflict, match=f"request {first.id}"):
        service.submit_request(session, actor=w.rs_admin, data=ask(w.deaths))


def test_the_scope_is_stored_on_the_items_types(session: Session, w: World) -> None:
    scope = [{"item": "age", "op": "ge", "value": "60"}]
    req = service.submit_request(session, actor=w.rs_op, data=ask(w.deaths, scope=scope))
    assert req.scope == [{"item": "age", "op": "ge", "value": 60}]


# ---------------------------------------------------------------- deciding


def test_approval_narrows_and_chooses_unmasked_items(session: Session, w: World) -> None:
    scope = [{"item": "age", "op": "ge", "value": 60}]
    req = service.submit_request(
        session, actor=w.rs_op, data=ask(w.deaths, modes=["query", "verify"], scope=scope), now=NOW
    )
    data = ApproveIn(
        items=["id_number"],
        modes=["verify"],
        scope=[{"item": "death_date", "op": "ge", "value": "2020-01-01"}],
        duration_days=90,
        calls_per_day=1000,
        unmasked_items=["id_number"],
    )
    grant = decisions.approve(session, actor=w.wjw_admin, request_id=req.id, data=data, now=NOW)
    assert grant.items == ["id_number"]
    assert grant.modes == ["verify"]
    assert grant.unmasked_items == ["id_number"]
    assert grant.calls_per_day == 1000
    assert grant.expires_at == NOW + dt.timedelta(days=90)
    assert [c["item"] for c in grant.scope] == ["age", "death_date"]
    assert req.decided_by == f"user:{w.wjw_admin.name}"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (ApproveIn(items=["name"]), "item name was not asked for"),
        (ApproveIn(modes=["bulk"]), "mode bulk was not asked for"),
        (ApproveIn(duration_days=400), "shorten the grant, not lengthen"),
        (ApproveIn(items=["death_date"], unmasked_items=["id_number"]), "must be granted items"),
    ],
)
def test_approval_only_narrows(session: Session, w: World, data: ApproveIn, words: str) -> None:
    req = service.submit_request(session, actor=w.rs_op, data=ask(w.deaths))
    with pytest.raises(InvalidInput, match=words):
        decisions.approve(session, actor=w.wjw_admin, request_id=req.id, data=data)


def test_only_the_providers_admins_decide(session: Session, w: World) -> None:
    req = service.submit_request(session, actor=w.rs_op, data=ask(w.deaths))
    for actor in (w.wjw_op, w.rs_admin):
        with pytest.raises(Forbidden, match="provider's org admins"):
            decisions.approve(session, actor=actor, request_id=req.id, data=ApproveIn())
    with pytest.raises(NotFound):  # a third organisation does not even see it
        decisions.refuse(session, actor=w.mz_admin, request_id=req.id, reason="no")


def test_deciding_twice_is_a_conflict(session: Session, w: World) -> None:
    req = service.submit_request(session, actor=w.rs_op, data=ask(w.deaths))
    decisions.approve(session, actor=w.wjw_admin, request_id=req.id, data=ApproveIn())
    with pytest.raises(Conflict, match="already approved"):
        decisions.refuse(session, actor=w.wjw_admin, request_id=req.id, reason="changed my mind")


def test_refusing_needs_a_reason(session: Session, w: World) -> None:
    req = service.submit_request(session, actor=w.rs_op, data=ask(w.deaths))
    with pytest.raises(InvalidInput, match="give a reason"):
        decisions.refuse(session, actor=w.wjw_admin, request_id=req.id, reason="  ")
    decisions.refuse(session, actor=w.wjw_admin, request_id=req.id, reason="用途不明确")
    assert req.status is RequestStatus.REFUSED
    assert req.decision_note == "用途不明确"
    assert actions(session)[-1] == ("exchange.request.refuse", "refused")


def test_the_requester_withdraws_a_pending_request(session: Session, w: World) -> None:
    req = service.submit_request(session, actor=w.rs_op, data=ask(w.deaths))
    with pytest.raises(Forbidden):
        decisions.withdraw(session, actor=w.wjw_admin, request_id=req.id)
    decisions.withdraw(session, actor=w.rs_admin, request_id=req.id)
    assert req.status is RequestStatus.WITHDRAWN
    with pytest.raises(Conflict):
        decisions.withdraw(session, actor=w.rs_admin, request_id=req.id)


# ---------------------------------------------------------------- grants over time


def _granted(session: Session, w: World) -> int:
    req = service.submit_request(session, actor=w.rs_op, data=ask(w.deaths), now=NOW)
    data = ApproveIn(duration_days=30)
    return decisions.approve(session, actor=w.wjw_admin, request_id=req.id, data=data, now=NOW).id


def test_a_renewal_continues_from_the_old_expiry(session: Session, w: World) -> None:
    grant_id = _granted(session, w)
    renewal = service.renew_grant(
        session, actor=w.rs_op, grant_id=grant_id, data=RenewIn(duration_days=60), now=NOW
    )
    assert renewal.renews_grant_id == grant_id
    assert renewal.status is RequestStatus.PENDING
    later = NOW + dt.timedelta(days=3)
    new = decisions.approve(
        session, actor=w.wjw_admin, request_id=renewal.id, data=ApproveIn(), now=later
    )
    assert new.starts_at == NOW + dt.timedelta(days=30)
    assert new.expires_at == NOW + dt.timedelta(days=90)
    assert ("exchange.grant.renew", "ok") in actions(session)


def test_revoking_needs_the_provider_and_a_reason(session: Session, w: World) -> None:
    grant_id = _granted(session, w)
    with pytest.raises(Forbidden):
        decisions.revoke(session, actor=w.rs_admin, grant_id=grant_id, reason="x")
    with pytest.raises(InvalidInput, match="reason"):
        decisions.revoke(session, actor=w.wjw_admin, grant_id=grant_id, reason="")
    grant = decisions.revoke(session, actor=w.wjw_admin, grant_id=grant_id, reason="超范围使用")
    assert grant.status is GrantStatus.REVOKED
    with pytest.raises(Conflict, match="already revoked"):
        decisions.revoke(session, actor=ROOT, grant_id=grant_id, reason="again")
    with pytest.raises(Conflict, match="was revoked"):
        service.renew_grant(session, actor=w.rs_op, grant_id=grant_id, data=RenewIn())


def test_expiry_marks_grants_past_their_end(session: Session, w: World) -> None:
    grant_id = _granted(session, w)
    assert service.expire_grants(session, now=NOW + dt.timedelta(days=29)) == []
    assert service.expire_grants(session, now=NOW + dt.timedelta(days=30)) == [grant_id]
    grant = repository.grant_by_id(session, grant_id)
    assert grant is not None
    assert grant.status is GrantStatus.EXPIRED
    assert actions(session)[-1] == ("exchange.grant.expire", "ok")


def test_overdue_requests_escalate_once_to_the_platform_inbox(session: Session, w: World) -> None:
    req = service.submit_request(session, actor=w.rs_op, data=ask(w.deaths), now=NOW)
    assert req.due_on is not None
    assert service.escalate_overdue(session, today=req.due_on) == []
    assert service.escalate_overdue(session, today=req.due_on + dt.timedelta(days=1)) == [req.id]
    assert service.escalate_overdue(session, today=req.due_on + dt.timedelta(days=2)) == []
    assert [r.id for r in service.list_requests(session, actor=ROOT, inbox=True)] == [req.id]
    assert actions(session)[-1] == ("exchange.request.escalate", "ok")


def test_the_inbox_lists_the_earliest_deadline_first(session: Session, w: World) -> None:
    late = service.submit_request(session, actor=w.rs_op, data=ask(w.deaths), now=NOW)
    early = service.submit_request(
        session,
        actor=ROOT,
        data=ask(w.deaths, consumer_org_code="RS", system_code="pension"),
        now=NOW - dt.timedelta(days=20),
    )
    inbox = service.list_requests(session, actor=w.wjw_admin, inbox=True)
    assert [r.id for r in inbox] == [early.id, late.id]
    views = service.describe_requests(session, inbox, today=dt.date(2026, 9, 21))
    assert views[0].overdue
    assert views[0].days_left is not None
    assert views[0].days_left < 0
    assert views[1].days_left == 10
    with pytest.raises(Forbidden, match="inbox"):
        service.list_requests(session, actor=w.wjw_op, inbox=True)
