"""Members: the city hierarchy, the rules on who may change what, and bad input."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from factories import ROOT, make_org, make_user
from haihe.core.auth import Principal, Role
from haihe.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from haihe.core.identity import compose_uscc
from haihe.orgs import service
from haihe.orgs.auth import principal_of_user
from haihe.orgs.models import OrgKind
from haihe.orgs.schemas import OrgCreate, OrgUpdate, UserCreate, UserUpdate


def _city(session: Session) -> None:
    make_org(session, code="TJ", name_zh="天津市", kind=OrgKind.CITY, region_code="120000")
    make_org(
        session,
        code="HP",
        name_zh="和平区",
        kind=OrgKind.DISTRICT,
        parent_code="TJ",
        region_code="120101",
    )
    make_org(
        session,
        code="XBL",
        name_zh="小白楼街道",
        kind=OrgKind.STREET,
        parent_code="HP",
        region_code="120101001",
    )


def _as(session: Session, username: str) -> Principal:
    p = principal_of_user(service.get_user(session, username=username))
    assert p is not None
    return p


def test_hierarchy_city_district_street_community(session: Session) -> None:
    _city(session)
    community = make_org(
        session,
        code="C1",
        name_zh="五大道社区",
        kind=OrgKind.COMMUNITY,
        parent_code="XBL",
        region_code="120101001001",
    )
    assert [o.code for o in [community.parent, community.parent.parent]] == ["XBL", "HP"]
    rows, total = service.list_orgs(session, parent_code="HP")
    assert total == 1
    assert rows[0].code == "XBL"
    rows, total = service.list_orgs(session, q="五大道")
    assert [o.code for o in rows] == ["C1"]


@pytest.mark.parametrize(
    ("kind", "parent", "message"),
    [
        (OrgKind.STREET, "TJ", "a street must have district as parent, not city"),
        (OrgKind.COMMUNITY, "HP", "a community must have street as parent, not district"),
        (OrgKind.DISTRICT, None, "a district must have city as parent, not no parent"),
        (OrgKind.DISTRICT, "NOPE", "parent organisation 'NOPE' does not exist"),
    ],
)
def test_parent_must_fit_the_hierarchy(
    session: Session, kind: OrgKind, parent: str | None, message: str
) -> None:
    _city(session)
    with pytest.raises(InvalidInput) as err:
        make_org(session, code="X", kind=kind, parent_code=parent)
    assert err.value.message == message


def test_region_code_must_sit_inside_the_parent(session: Session) -> None:
    _city(session)
    with pytest.raises(InvalidInput, match="not inside the parent's region 120101"):
        make_org(session, code="S2", kind=OrgKind.STREET, parent_code="HP", region_code="120102001")


def test_duplicate_code_and_credit_code(session: Session) -> None:
    code = compose_uscc("1", "1", "120000", "00000000")
    make_org(session, code="GA", credit_code=" " + code.lower())
    assert service.get_org(session, code="GA").credit_code == code
    with pytest.raises(Conflict, match="organisation code 'GA' already exists"):
        make_org(session, code="GA")
    with pytest.raises(Conflict, match=f"credit code {code} already belongs to organisation 'GA'"):
        make_org(session, code="GA2", credit_code=code)


def test_credit_code_is_validated_and_unique(session: Session) -> None:
    with pytest.raises(InvalidInput):
        make_org(session, code="E1", kind=OrgKind.ENTERPRISE, credit_code="91120000ABCDEFGHIJ")


def test_moving_an_org_inside_itself_is_refused(session: Session) -> None:
    _city(session)
    with pytest.raises(InvalidInput):
        service.update_org(session, actor=ROOT, code="HP", data=OrgUpdate(parent_code="XBL"))


def test_org_admin_renames_own_org_only(session: Session) -> None:
    a = make_org(session, code="A")
    make_org(session, code="B")
    make_user(session, Role.ORG_ADMIN, org=a, username="adm")
    actor = _as(session, "adm")
    service.update_org(session, actor=actor, code="A", data=OrgUpdate(name_zh="新名字"))
    assert service.get_org(session, code="A").name_zh == "新名字"
    with pytest.raises(Forbidden):
        service.update_org(session, actor=actor, code="B", data=OrgUpdate(name_zh="x"))
    with pytest.raises(Forbidden, match="only the platform admin may move"):
        service.update_org(session, actor=actor, code="A", data=OrgUpdate(active=False))


def test_org_admin_cannot_grant_platform_roles(session: Session) -> None:
    a = make_org(session, code="A")
    make_user(session, Role.ORG_ADMIN, org=a, username="adm")
    actor = _as(session, "adm")
    data = UserCreate(
        username="sneaky",
        display_name="x",
        password="long enough",
        org_code="A",
        roles=[Role.PLATFORM_ADMIN],
    )
    with pytest.raises(Forbidden, match="only the platform admin may grant"):
        service.create_user(session, actor=actor, data=data)


def test_org_roles_need_an_org(session: Session) -> None:
    data = UserCreate(
        username="op", display_name="x", password="long enough", roles=[Role.OPERATOR]
    )
    with pytest.raises(InvalidInput, match="the roles operator need an organisation"):
        service.create_user(session, actor=ROOT, data=data)


def test_duplicate_username(session: Session) -> None:
    make_user(session, Role.RESIDENT, username="li")
    with pytest.raises(Conflict, match="username 'li' is taken"):
        make_user(session, Role.RESIDENT, username="li")


def test_last_platform_admin_cannot_be_removed(session: Session) -> None:
    make_user(session, Role.PLATFORM_ADMIN, username="root1")
    with pytest.raises(Conflict, match="last active platform admin"):
        service.update_user(session, actor=ROOT, username="root1", data=UserUpdate(active=False))
    make_user(session, Role.PLATFORM_ADMIN, username="root2")
    service.update_user(session, actor=ROOT, username="root1", data=UserUpdate(roles=[]))
    assert service.get_user(session, username="root1").roles == frozenset()


def test_unknown_org_and_user(session: Session) -> None:
    with pytest.raises(NotFound, match="organisation 'ZZ' does not exist"):
        service.get_org(session, code="ZZ")
    with pytest.raises(NotFound, match="user 'nobody' does not exist"):
        service.get_user(session, username="nobody")


def test_org_create_schema_refuses_bad_codes() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        OrgCreate(code="has space", name_zh="x", kind=OrgKind.ENTERPRISE)
    with pytest.raises(ValidationError):
        OrgCreate(code="ok", name_zh="x", kind=OrgKind.DISTRICT, region_code="12")
