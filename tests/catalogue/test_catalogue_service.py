"""Describing entries: codes, the sharing rules, who may change what, and the history kept."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from factories import ROOT, make_org, make_resource, make_user, resource_in
from haihe.catalogue import service
from haihe.catalogue.models import ResourceStatus, Sensitivity
from haihe.catalogue.schemas import ResourceUpdate
from haihe.core.auth import Principal, Role
from haihe.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from haihe.orgs import service as orgs
from haihe.orgs.auth import principal_of_user


def _as(session: Session, username: str) -> Principal:
    p = principal_of_user(orgs.get_user(session, username=username))
    assert p is not None
    return p


def test_codes_follow_the_classification(session: Session) -> None:
    wjw = make_org(session, code="WJW")
    first = make_resource(session, wjw)
    second = make_resource(session, wjw)
    topical = make_resource(session, wjw, base_library=None, topic="02")
    own = make_resource(session, wjw, base_library=None, topic=None)
    assert [first.code, second.code] == ["101-000001", "101-000002"]
    assert topical.code == "202-000001"
    assert own.code == "3WJW-000001"
    assert first.status is ResourceStatus.DRAFT


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"legal_basis": None}, "needs sharing_conditions and legal_basis"),
        ({"sharing_conditions": None}, "needs sharing_conditions and legal_basis"),
        ({"sharing_type": "not_shared", "legal_basis": None}, "needs the legal_basis"),
        ({"open_type": "conditional"}, "needs open_conditions"),
        ({"sharing_modes": []}, "at least one sharing mode"),
    ],
)
def test_sharing_rules(session: Session, overrides: dict[str, object], message: str) -> None:
    wjw = make_org(session, code="WJW")
    with pytest.raises(InvalidInput, match=message):
        make_resource(session, wjw, **overrides)


def test_unconditional_needs_no_legal_basis(session: Session) -> None:
    org = make_org(session, code="MZ")
    r = make_resource(
        session, org, sharing_type="unconditional", sharing_conditions=None, legal_basis=None
    )
    assert r.legal_basis is None


def test_unknown_provider(session: Session) -> None:
    org = make_org(session, code="MZ")
    data = resource_in(org, provider_code="NOPE")
    with pytest.raises(NotFound, match="organisation 'NOPE' does not exist"):
        service.create_resource(session, actor=ROOT, data=data)


def test_item_rules(session: Session) -> None:
    org = make_org(session, code="MZ")
    base = resource_in(org).items
    dup = [base[0], base[0]]
    with pytest.raises(InvalidInput, match="appears twice"):
        make_resource(session, org, items=[i.model_dump() for i in dup])
    personal_l1 = base[2].model_copy(update={"sensitivity": Sensitivity.L1})
    with pytest.raises(InvalidInput, match="personal information"):
        make_resource(session, org, items=[base[0].model_dump(), personal_l1.model_dump()])


def test_org_admin_edits_only_its_own_entries(session: Session) -> None:
    wjw, mz = make_org(session, code="WJW"), make_org(session, code="MZ")
    make_user(session, Role.ORG_ADMIN, org=wjw, username="wjw_admin")
    make_user(session, Role.ORG_ADMIN, org=mz, username="mz_admin")
    make_user(session, Role.OPERATOR, org=wjw, username="wjw_op")
    r = make_resource(session, wjw)
    service.update_resource(
        session, actor=_as(session, "wjw_admin"), code=r.code, data=ResourceUpdate(name_zh="新名")
    )
    assert r.name_zh == "新名"
    with pytest.raises(NotFound):  # a draft of another org is not even visible
        service.update_resource(
            session, actor=_as(session, "mz_admin"), code=r.code, data=ResourceUpdate(name_zh="x")
        )
    with pytest.raises(Forbidden):
        service.update_resource(
            session, actor=_as(session, "wjw_op"), code=r.code, data=ResourceUpdate(name_zh="x")
        )


def test_publish_and_retire_are_the_platform_admins(session: Session) -> None:
    wjw = make_org(session, code="WJW")
    make_user(session, Role.ORG_ADMIN, org=wjw, username="wjw_admin")
    r = make_resource(session, wjw)
    with pytest.raises(Forbidden):
        service.publish(session, actor=_as(session, "wjw_admin"), code=r.code)
    service.publish(session, actor=ROOT, code=r.code)
    assert r.status is ResourceStatus.PUBLISHED
    assert r.published_on is not None
    with pytest.raises(Conflict, match="only a draft entry can become published"):
        service.publish(session, actor=ROOT, code=r.code)
    service.retire(session, actor=ROOT, code=r.code)
    with pytest.raises(Conflict, match="retired"):
        service.update_resource(session, actor=ROOT, code=r.code, data=ResourceUpdate(name_zh="x"))


def test_every_change_keeps_who_when_before_after(session: Session) -> None:
    wjw = make_org(session, code="WJW")
    make_user(session, Role.ORG_ADMIN, org=wjw, username="wjw_admin")
    r = make_resource(session, wjw)
    service.update_resource(
        session,
        actor=_as(session, "wjw_admin"),
        code=r.code,
        data=ResourceUpdate(summary_zh="更新后的摘要"),
    )
    service.publish(session, actor=ROOT, code=r.code)
    changes = service.history(session, actor=ROOT, code=r.code)
    assert [c.action for c in changes] == ["published", "update", "create"]
    update = changes[1]
    assert update.actor == "user:wjw_admin"
    assert update.before["summary_zh"] == "医疗机构出具的死亡医学证明（推断）书信息。"
    assert update.after["summary_zh"] == "更新后的摘要"
    assert changes[2].before is None


def test_related_entries(session: Session) -> None:
    wjw = make_org(session, code="WJW")
    a = make_resource(session, wjw)
    b = make_resource(session, wjw, related=[a.code])
    assert service.describe(session, b).related == [a.code]
    with pytest.raises(InvalidInput, match="related entry '999-000001' does not exist"):
        make_resource(session, wjw, related=["999-000001"])
