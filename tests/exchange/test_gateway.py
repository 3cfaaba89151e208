"""The query gateway's service: items, masking, scope, filters, paging, quotas, audit, row store."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from test_gateway_world import ITEMS, City, build_city, grant, person, write_csv

from factories import ROOT, make_resource
from haihe.audit.models import AuditEntry, AuditSubject
from haihe.catalogue import service as catalogue
from haihe.catalogue.loading import LoadSource, load_resource
from haihe.catalogue.models import Resource
from haihe.core.auth import Principal
from haihe.core.db import transaction
from haihe.core.errors import Conflict, Forbidden, InvalidInput, NotFound, RateLimited, StorageError
from haihe.core.masking import mask_value, pseudonymise
from haihe.core.settings import Settings
from haihe.engine import make_rowstore
from haihe.exchange import gateway
from haihe.exchange.gateway import Records, query_records, seconds_to_midnight
from haihe.exchange.models import GrantUsage
from haihe.orgs import auth
from haihe.orgs.models import Organisation, TokenKind

PEOPLE = 60


@pytest.fixture
def city(session: Session, settings: Settings, tmp_path: Path) -> City:
    return build_city(session, settings, tmp_path / "in", people=PEOPLE)


def principal(session: Session, city: City, who: str) -> Principal:
    found = auth.principal_for_token(session, city.tokens[who], kind=TokenKind.API)
    assert found is not None
    return found


def call(
    factory: sessionmaker[Session],
    settings: Settings,
    city: City,
    who: str = "rsj_client",
    **kwargs: Any,
) -> Records:
    """One gateway call in its own transaction, as the request edge runs it."""
    with transaction(factory) as s:
        return query_records(
            s,
            actor=principal(s, city, who),
            settings=settings,
            code=kwargs.pop("code", city.code),
            request_id=kwargs.pop("request_id", "req-1"),
            **kwargs,
        )


def entries(session: Session) -> list[AuditEntry]:
    session.expire_all()
    return list(
        session.scalars(
            select(AuditEntry).where(AuditEntry.action == "exchange.query").order_by(AuditEntry.id)
        )
    )


def test_a_grantee_gets_every_granted_item_with_personal_ones_masked(
    session: Session, session_factory: sessionmaker[Session], settings: Settings, city: City
) -> None:
    grant(session, city)
    page = call(session_factory, settings, city, limit=5)
    first = person(0)
    expected = {**first, **{n: mask_value(first[n], n) for n in ("id_number", "name", "phone")}}
    assert page.masked == ["id_number", "name", "phone"]
    assert page.records[0] == expected
    assert len(page.records) == 5


def test_items_the_grant_names_unmasked_come_clear(
    session: Session, session_factory: sessionmaker[Session], settings: Settings, city: City
) -> None:
    grant(session, city, unmasked_items=["name"])
    page = call(session_factory, settings, city, items=["person_no", "name"], limit=1)
    assert page.records == [{"person_no": "P00000", "name": person(0)["name"]}]
    assert page.masked == []


def test_asking_for_an_item_outside_the_grant_is_refused_naming_it_and_audited(
    session: Session, session_factory: sessionmaker[Session], settings: Settings, city: City
) -> None:
    grant(session, city, items=["person_no", "district", "age"])
    with pytest.raises(Forbidden, match="name") as raised:
        call(session_factory, settings, city, items=["person_no", "name"])
    assert raised.value.details["items"] == ["name"]
    refused = entries(session)
    assert [(e.outcome, e.rows, json.loads(e.items_json)) for e in refused] == [
        ("refused", 0, ["person_no", "name"])
    ]


def test_filtering_on_an_item_outside_the_grant_is_refused(
    session: Session, session_factory: sessionmaker[Session], settings: Settings, city: City
) -> None:
    grant(session, city, items=["person_no", "district"])
    with pytest.raises(Forbidden, match="age"):
        call(
            session_factory,
            settings,
            city,
            filters=[{"item": "age", "op": "ge", "value": 60}],
        )
    assert [e.outcome for e in entries(session)] == ["refused"]


def test_an_item_the_resource_lacks_is_invalid_input(
    session: Session, session_factory: sessionmaker[Session], settings: Settings, city: City
) -> None:
    grant(session, city)
    with pytest.raises(InvalidInput, match="salary"):
        call(session_factory, settings, city, items=["salary"])


def test_rows_meet_the_grant_scope_and_the_filters(
    session: Session, session_factory: sessionmaker[Session], settings: Settings, city: City
) -> None:
    grant(session, city, scope=[{"item": "district", "op": "eq", "value": "120101"}])
    page = call(
        session_factory,
        settings,
        city,
        items=["person_no"],
        filters=[{"item": "age", "op": "ge", "value": "60"}],
        limit=1000,
    )
    expected = [
        p["person_no"]
        for p in map(person, range(PEOPLE))
        if p["district"] == "120101" and p["age"] >= 60
    ]
    assert [r["person_no"] for r in page.records] == expected
    assert page.next is None


def test_pages_follow_each_other_through_the_cursor(
    session: Session, session_factory: sessionmaker[Session], settings: Settings, city: City
) -> None:
    grant(session, city)
    seen: list[str] = []
    after = None
    for _ in range(20):
        page = call(session_factory, settings, city, items=["person_no"], limit=7, after=after)
        seen += [r["person_no"] for r in page.records]
        after = page.next
        if after is None:
            break
    assert seen == [f"P{i:05d}" for i in range(PEOPLE)]


def test_a_cursor_the_gateway_did_not_give_is_invalid(
    session: Session, session_factory: sessionmaker[Session], settings: Settings, city: City
) -> None:
    grant(session, city)
    with pytest.raises(InvalidInput, match="cursor"):
        call(session_factory, settings, city, after="not-a-cursor")


def test_calls_over_the_daily_quota_are_refused_until_midnight_in_shanghai(
    session: Session, session_factory: sessionmaker[Session], settings: Settings, city: City
) -> None:
    g = grant(session, city, calls_per_day=2)
    call(session_factory, settings, city, limit=1)
    call(session_factory, settings, city, limit=1)
    with pytest.raises(RateLimited) as raised:
        call(session_factory, settings, city, limit=1)
    assert 0 < raised.value.retry_after <= seconds_to_midnight() + 1
    session.expire_all()
    usage = session.scalars(select(GrantUsage).where(GrantUsage.grant_id == g.id)).one()
    assert (usage.calls, usage.rows) == (2, 2)
    assert [e.outcome for e in entries(session)] == ["ok", "ok", "refused"]


def test_rows_over_the_daily_quota_are_cut_then_refused(
    session: Session, session_factory: sessionmaker[Session], settings: Settings, city: City
) -> None:
    grant(session, city, rows_per_day=10)
    first = call(session_factory, settings, city, limit=7)
    second = call(session_factory, settings, city, limit=7, after=first.next)
    assert [len(first.records), len(second.records)] == [7, 3]
    with pytest.raises(RateLimited, match="10 rows"):
        call(session_factory, settings, city, limit=1, after=second.next)


def test_the_quota_day_ends_at_midnight_in_shanghai() -> None:
    before_midnight = dt.datetime(2026, 5, 1, 15, 59, 30, tzinfo=dt.UTC)  # 23:59:30 in Shanghai
    assert seconds_to_midnight(before_midnight) == 30


def test_every_call_is_audited_with_purpose_provider_and_subject_pseudonyms(
    session: Session, session_factory: sessionmaker[Session], settings: Settings, city: City
) -> None:
    g = grant(session, city, items=["person_no", "age"])
    page = call(session_factory, settings, city, limit=3, request_id="abc-123")
    [entry] = entries(session)
    key = settings.secret_key_bytes()
    tokens = session.scalars(
        select(AuditSubject.token).where(AuditSubject.entry_id == entry.id)
    ).all()
    assert sorted(tokens) == sorted(pseudonymise(key, person(i)["id_number"]) for i in range(3))
    assert page.subjects == sorted(tokens)
    assert (entry.outcome, entry.mode, entry.rows, entry.purpose) == ("ok", "query", 3, g.purpose)
    assert (entry.provider_code, entry.org_code, entry.request_id) == ("GA", "RSJ", "abc-123")
    assert json.loads(entry.items_json) == ["person_no", "age"]


def test_without_a_grant_the_call_is_refused_and_audited(
    session: Session, session_factory: sessionmaker[Session], settings: Settings, city: City
) -> None:
    with pytest.raises(Forbidden, match="holds no grant"):
        call(session_factory, settings, city, who="mz_client")
    [entry] = entries(session)
    assert (entry.outcome, entry.org_code, entry.provider_code) == ("refused", "MZ", "GA")


def test_a_resource_that_is_not_published_is_not_found(
    session: Session, session_factory: sessionmaker[Session], settings: Settings, city: City
) -> None:
    grant(session, city)
    catalogue.retire(session, actor=ROOT, code=city.code)
    session.commit()
    with pytest.raises(NotFound):
        call(session_factory, settings, city)


def test_a_version_without_a_row_store_gets_one_on_first_use(
    session: Session, session_factory: sessionmaker[Session], settings: Settings, city: City
) -> None:
    grant(session, city)
    rowstore = make_rowstore(settings)
    path = rowstore.path(city.code, 1)
    rowstore.remove(city.code, 1)
    page = call(session_factory, settings, city, items=["person_no"], limit=2)
    assert path.is_file()
    assert [r["person_no"] for r in page.records] == ["P00000", "P00001"]


def test_a_new_version_carries_keyed_cursors_over(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    city: City,
    tmp_path: Path,
) -> None:
    grant(session, city)
    first = call(session_factory, settings, city, items=["person_no"], limit=5)
    path = write_csv(tmp_path / "v2.csv", [person(i) for i in range(3, 9)])
    load_resource(
        session, actor=ROOT, settings=settings, code=city.code, source=LoadSource.for_file(path)
    )
    session.commit()
    second = call(session_factory, settings, city, items=["person_no"], after=first.next)
    assert (second.version, [r["person_no"] for r in second.records]) == (
        2,
        ["P00005", "P00006", "P00007", "P00008"],
    )


def test_a_load_builds_the_row_store_before_the_version_is_current(
    session: Session, settings: Settings, city: City
) -> None:
    resource = session.scalars(select(Resource).where(Resource.code == city.code)).one()
    table = make_rowstore(settings).open(city.code, resource.current_version or 0)
    assert (table.rows, table.keys, table.indexed) == (PEOPLE, ["person_no"], ["id_number"])


def test_a_row_store_that_cannot_be_built_fails_the_load_cleanly(
    session_factory: sessionmaker[Session], settings: Settings, city: City, tmp_path: Path
) -> None:
    blocker = make_rowstore(settings).path(city.code, 2)
    blocker.mkdir(parents=True)  # a directory where the file must go
    path = write_csv(tmp_path / "v2.csv", [person(i) for i in range(5)])
    with pytest.raises(StorageError, match="row store"), transaction(session_factory) as s:
        load_resource(
            s, actor=ROOT, settings=settings, code=city.code, source=LoadSource.for_file(path)
        )
    with session_factory() as s:
        resource = s.scalars(select(Resource).where(Resource.code == city.code)).one()
        assert resource.current_version == 1


def test_limit_is_between_1_and_1000(
    session: Session, session_factory: sessionmaker[Session], settings: Settings, city: City
) -> None:
    grant(session, city)
    with pytest.raises(InvalidInput, match="limit"):
        call(session_factory, settings, city, limit=gateway.MAX_LIMIT + 1)


def test_a_keyless_resource_refuses_a_cursor_from_an_older_version(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    city: City,
    tmp_path: Path,
) -> None:
    provider = session.get(Organisation, city.org_ids["GA"])
    assert provider is not None
    keyless = make_resource(session, provider, items=[{**i, "is_key": False} for i in ITEMS])
    catalogue.publish(session, actor=ROOT, code=keyless.code)
    source = LoadSource.for_file(write_csv(tmp_path / "k.csv", [person(i) for i in range(5)]))
    load_resource(session, actor=ROOT, settings=settings, code=keyless.code, source=source)
    grant(session, city, resource_id=keyless.id)
    first = call(session_factory, settings, city, code=keyless.code, limit=2)
    load_resource(session, actor=ROOT, settings=settings, code=keyless.code, source=source)
    session.commit()
    with pytest.raises(Conflict, match="start again"):
        call(session_factory, settings, city, code=keyless.code, after=first.next)
