"""Catalogue workbooks and JSON: round trips without loss; every bad cell reported, nothing done."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from factories import ROOT, make_org, make_resource, make_user, resource_in
from haihe.catalogue import service
from haihe.catalogue.models import (
    DataItem,
    ItemKind,
    Resource,
    ResourceChange,
    ResourceRelation,
    UpdateCycle,
)
from haihe.catalogue.schemas import FORMATS
from haihe.catalogue.spreadsheet import (
    ImportRejected,
    ImportReport,
    export_json,
    export_xlsx,
    import_json,
    import_xlsx,
)
from haihe.core.auth import Principal, Role
from haihe.core.errors import InvalidInput, NotFound
from haihe.orgs import service as orgs
from haihe.orgs.auth import principal_of_user

SUMMARY = "第一行：医疗机构出具的死亡医学证明。\n第二行：含“引号”、逗号, 以及 emoji 🏥。"


def _as(session: Session, username: str) -> Principal:
    p = principal_of_user(orgs.get_user(session, username=username))
    assert p is not None
    return p


def _items(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    key = {"name": "record_no", "name_zh": "编号", "type": "string", "is_key": True}
    return [key | {"nullable": False}, *extra]


def _catalogue(session: Session) -> dict[str, str]:
    """Two providers' entries covering every enumeration, relations, tags and awkward text."""
    wjw, mz = make_org(session, code="WJW"), make_org(session, code="MZ")
    death = make_resource(session, wjw, summary_zh=SUMMARY, tags=["死亡", "社保, 核查", "=SUM(A1)"])
    kinds = [
        {
            "name": f"f_{kind.value}",
            "name_zh": f"字段{n}",
            "name_en": f"Field {n}" if n % 2 else None,
            "type": ["string", "int64", "float64", "bool", "date32", "timestamp[us]"][n % 6]
            if kind is not ItemKind.ID_NUMBER
            else "string",
            "sensitivity": f"L{n % 4 + 1}" if n % 4 else "L2",
            "personal": True,
            "kind": kind.value,
            "description": "说明第一行\n第二行" if n == 1 else None,
        }
        for n, kind in enumerate(ItemKind)
    ]
    care = make_resource(
        session,
        wjw,
        name_en=None,
        summary_zh="=1+1 不是公式",
        summary_en=None,
        base_library=None,
        topic="14",
        format="api",
        sharing_type="unconditional",
        sharing_conditions=None,
        legal_basis=None,
        sharing_modes=["verify", "query"],
        open_type="conditional",
        open_conditions="实名注册后开放",
        update_cycle="monthly",
        steward_name="王五",
        steward_contact="022-12345678",
        related=[death.code],
        items=_items(*kinds),
    )
    secret = make_resource(
        session,
        wjw,
        base_library=None,
        topic=None,
        sharing_type="not_shared",
        sharing_conditions=None,
        legal_basis="《保守国家秘密法》",
        sharing_modes=[],
        open_type="not_open",
    )
    firms = make_resource(
        session,
        mz,
        base_library="legal_entity",
        sharing_type="unconditional",
        open_type="unconditional",
        related=[care.code, death.code],
    )
    for library, cycle, fmt in zip(
        ("geospatial", "social_credit", "e_licence", None, None, None, None),
        UpdateCycle,
        FORMATS,
        strict=True,
    ):
        make_resource(session, mz, base_library=library, update_cycle=cycle, format=fmt)
    service.publish(session, actor=ROOT, code=death.code)
    service.publish(session, actor=ROOT, code=firms.code)
    service.publish(session, actor=ROOT, code=secret.code)
    service.retire(session, actor=ROOT, code=secret.code)
    session.commit()
    return {"death": death.code, "care": care.code, "secret": secret.code, "firms": firms.code}


def _cells(data: bytes) -> dict[str, list[tuple[Any, ...]]]:
    book = load_workbook(io.BytesIO(data), read_only=True)
    try:
        return {ws.title: list(ws.iter_rows(values_only=True)) for ws in book.worksheets}
    finally:
        book.close()


def _edit(data: bytes) -> Workbook:
    return load_workbook(io.BytesIO(data))


def _bytes(book: Workbook) -> bytes:
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _row_of(book: Workbook, code: str) -> int:
    return next(c.row for c in book["资源目录"]["A"] if c.value == code)


def _new_row(name: str, provider: str, code: str | None = None) -> list[Any]:
    """A new entry's row up to its sharing modes: an unconditionally shared, queried entry."""
    return [code, name, None, "摘要", None, provider, *[None] * 3, "无条件共享", None, None, "查询"]


def _empty_catalogue(session: Session) -> None:
    for table in (ResourceRelation, ResourceChange, DataItem, Resource):
        session.execute(delete(table))
    session.commit()


def _changes(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ResourceChange)) or 0


def _where(exc: pytest.ExceptionInfo[ImportRejected]) -> set[str]:
    return {p.where for p in exc.value.report.problems}


# ---------------------------------------------------------------- round trips


def test_xlsx_round_trip_into_an_empty_catalogue(session: Session) -> None:
    codes = _catalogue(session)
    first = export_xlsx(session, actor=ROOT)
    _empty_catalogue(session)
    report = import_xlsx(session, actor=ROOT, data=first, restore=True)
    session.commit()
    assert len(report.created) == 11
    assert report.updated == []
    assert _cells(export_xlsx(session, actor=ROOT)) == _cells(first)
    care = service.describe(session, service.get_resource(session, actor=ROOT, code=codes["care"]))
    assert care.summary_zh == "=1+1 不是公式"
    assert [i.name for i in care.items][:3] == ["record_no", "f_id_number", "f_name"]
    death = service.get_resource(session, actor=ROOT, code=codes["death"])
    assert death.summary_zh == SUMMARY
    assert death.tags == ["死亡", "社保, 核查", "=SUM(A1)"]
    assert [c.action for c in service.history(session, actor=ROOT, code=codes["firms"])] == [
        "restore"
    ]
    firms = service.get_resource(session, actor=ROOT, code=codes["firms"])
    assert service.describe(session, firms).related == [codes["death"], codes["care"]]
    assert firms.status.value == "published"


def test_json_round_trip_into_an_empty_catalogue(session: Session) -> None:
    codes = _catalogue(session)
    first = export_json(session, actor=ROOT)
    assert (first["format"], first["version"]) == ("haihe-catalogue", 1)
    assert list(first["resources"][0]) == [
        *("code", "name_zh", "name_en", "summary_zh", "summary_en", "provider_code"),
        *("base_library", "topic", "format", "sharing_type", "sharing_conditions"),
        *("legal_basis", "sharing_modes", "open_type", "open_conditions", "update_cycle"),
        *("status", "published_on", "steward_name", "steward_contact", "tags", "related"),
        "items",
    ]
    assert list(first["resources"][0]["items"][0]) == [
        *("name", "name_zh", "name_en", "type", "is_key", "nullable", "sensitivity"),
        *("personal", "kind", "description"),
    ]
    secret = next(r for r in first["resources"] if r["code"] == codes["secret"])
    assert (secret["status"], secret["sharing_type"], secret["sharing_modes"]) == (
        "retired",
        "not_shared",
        [],
    )
    _empty_catalogue(session)
    text = json.dumps(first, ensure_ascii=False).encode()
    report = import_json(session, actor=ROOT, data=text, restore=True)
    session.commit()
    assert sorted(report.created) == sorted(r["code"] for r in first["resources"])
    assert export_json(session, actor=ROOT) == first


def test_reimporting_an_export_changes_nothing(session: Session) -> None:
    _catalogue(session)
    book = _edit(export_xlsx(session, actor=ROOT))
    items = book["信息项"]
    rows = [[c.value for c in row] for row in items.iter_rows(min_row=2)]
    for number, values in enumerate(reversed(rows), start=2):  # order comes from 序号, not rows
        for column, value in enumerate(values, start=1):
            items.cell(number, column).value = value
    before = _changes(session)
    report = import_xlsx(session, actor=ROOT, data=_bytes(book))
    assert (report.created, report.updated, report.unchanged) == ([], [], 11)
    assert _changes(session) == before
    report = import_json(session, actor=ROOT, data=export_json(session, actor=ROOT))
    assert report.unchanged == 11


def test_a_hand_compiled_sheet_creates_and_updates(session: Session) -> None:
    codes = _catalogue(session)
    book = _edit(export_xlsx(session, actor=ROOT, codes=[codes["care"]]))
    entries, items = book["资源目录"], book["信息项"]
    entries["B2"] = "居家养老服务对象（修订）"
    entries.append(
        [None, "低保家庭", None, "最低生活保障家庭名单", None, "MZ", "population", "民政服务"]
        + ["table", "conditional", "用于救助核查", "《社会救助暂行办法》", "query, verify"]
        + ["Unconditional", None, "每月", None, None, None, None, "低保\n救助", codes["care"]]
    )
    items.append(["低保家庭", 2, "family_size", "家庭人口", None, "int64", "no", None])
    items.append(["低保家庭", 1, "family_no", "家庭编号", None, "string", "是", "否", "l1"])
    report = import_xlsx(session, actor=ROOT, data=_bytes(book))
    assert report.updated == [codes["care"]]
    assert report.created == ["101-000002"]
    new = service.describe(session, service.get_resource(session, actor=ROOT, code="101-000002"))
    assert (new.topic, new.open_type.value, new.update_cycle.value) == (
        "03",
        "unconditional",
        "monthly",
    )
    assert [m.value for m in new.sharing_modes] == ["query", "verify"]
    assert [i.name for i in new.items] == ["family_no", "family_size"]
    assert new.items[0].is_key
    assert not new.items[0].nullable
    assert new.tags == ["低保", "救助"]
    assert new.related == [codes["care"]]
    history = service.history(session, actor=ROOT, code=codes["care"])
    assert history[0].action == "update"
    assert history[0].after["name_zh"] == "居家养老服务对象（修订）"


def test_the_workbook_explains_itself(session: Session) -> None:
    codes = _catalogue(session)
    book = _edit(export_xlsx(session, actor=ROOT, codes=[codes["care"]]))
    assert book.sheetnames == ["资源目录", "信息项", "说明"]
    entries, items = book["资源目录"], book["信息项"]
    assert (entries["J1"].value, items["F1"].value) == ("共享类型 sharing_type", "数据类型 type")
    assert entries.freeze_panes == items.freeze_panes == "A2"
    assert entries.column_dimensions["D"].width == 40
    lists = {
        str(dv.sqref).split(":")[0]: dv.formula1 for dv in entries.data_validations.dataValidation
    }
    assert lists["J2"] == '"无条件共享,有条件共享,不予共享"'
    assert "H2" in lists  # topics
    assert "M2" not in lists  # several sharing modes fit no drop-down
    flags = {
        str(dv.sqref).split(":")[0]: dv.formula1 for dv in items.data_validations.dataValidation
    }
    assert flags["G2"] == '"是,否"'
    assert entries["Q2"].value == "草稿"
    assert [c.value for c in items[2]][6:11] == ["是", "否", "L1", "否", "通用"]
    guide = [
        row for row in book["说明"].iter_rows(values_only=True) if row[0] in ("资源目录", "信息项")
    ]
    assert [row[1] for row in guide] == [c.value for c in entries[1]] + [c.value for c in items[1]]


# ---------------------------------------------------------------- bad input


def test_a_bad_sheet_reports_every_bad_cell_and_writes_nothing(session: Session) -> None:
    codes = _catalogue(session)
    book = _edit(export_xlsx(session, actor=ROOT))
    entries, items = book["资源目录"], book["信息项"]
    entries["E1"] = "英文简介"  # a renamed header
    entries[f"J{_row_of(book, codes['death'])}"] = "部分共享"  # unknown enum value
    entries[f"B{_row_of(book, codes['care'])}"] = None  # a required cell left empty
    entries[f"L{_row_of(book, '103-000001')}"] = "  "  # conditional without a legal basis
    entries.append(_new_row("新资源", "NOPE"))
    items.append(["新资源", 1, "a", "甲"])
    item_rows = {(c.value, items[f"B{c.row}"].value): c.row for c in items["A"]}
    items[f"F{item_rows[(codes['firms'], 2)]}"] = "varchar"  # a bad type name
    items[f"C{item_rows[('104-000001', 3)]}"] = "id_number"  # the name of its item 2 again
    before = _changes(session)
    with pytest.raises(ImportRejected) as caught:
        import_xlsx(session, actor=ROOT, data=_bytes(book))
    assert _where(caught) == {
        "资源目录!E1",
        f"资源目录!J{_row_of(book, codes['death'])}",
        f"资源目录!B{_row_of(book, codes['care'])}",
        f"资源目录!L{_row_of(book, '103-000001')}",
        f"资源目录!F{entries.max_row}",
        f"信息项!F{item_rows[(codes['firms'], 2)]}",
        f"信息项!C{item_rows[('104-000001', 3)]}",
    }
    report = caught.value.report
    assert len(report.problems) == 7
    by_cell = {p.where: p for p in report.problems}
    sharing = by_cell[f"资源目录!J{_row_of(book, codes['death'])}"]
    assert (sharing.column, sharing.value) == ("sharing_type", "部分共享")
    assert "无条件共享、有条件共享、不予共享" in sharing.message_zh
    assert "legal_basis" in by_cell[f"资源目录!L{_row_of(book, '103-000001')}"].message
    assert "unknown type" in by_cell[f"信息项!F{item_rows[(codes['firms'], 2)]}"].message
    assert "twice" in by_cell[f"信息项!C{item_rows[('104-000001', 3)]}"].message
    assert "NOPE" in by_cell[f"资源目录!F{entries.max_row}"].message
    session.rollback()
    assert _changes(session) == before
    assert session.scalar(select(func.count()).select_from(Resource)) == 11
    assert service.get_resource(session, actor=ROOT, code=codes["care"]).name_zh


def test_the_rejection_is_an_invalid_input_with_the_report(session: Session) -> None:
    with pytest.raises(InvalidInput) as caught:
        import_xlsx(session, actor=ROOT, data=b"code,name\n1,2\n")
    error = caught.value
    assert error.status == 422
    assert isinstance(error.details, dict)
    report = ImportReport.model_validate(error.details)
    assert report.problems[0].where == "file"
    assert "not an xlsx workbook" in report.problems[0].message
    assert "import refused" in report.lines()[0]
    json.dumps(error.to_dict())


def test_a_missing_sheet_is_one_problem(session: Session) -> None:
    codes = _catalogue(session)
    book = _edit(export_xlsx(session, actor=ROOT, codes=[codes["death"]]))
    del book["信息项"]
    with pytest.raises(ImportRejected) as caught:
        import_xlsx(session, actor=ROOT, data=_bytes(book))
    assert [p.where for p in caught.value.report.problems] == ["信息项"]


def test_an_item_for_no_entry_and_a_missing_column(session: Session) -> None:
    codes = _catalogue(session)
    book = _edit(export_xlsx(session, actor=ROOT, codes=[codes["death"]]))
    book["信息项"].append(["999-000001", 1, "x", "某"])
    book["资源目录"].delete_cols(21)  # 标签 tags
    with pytest.raises(ImportRejected) as caught:
        import_xlsx(session, actor=ROOT, data=_bytes(book))
    problems = caught.value.report.problems
    assert [(p.where, p.column) for p in problems] == [
        ("资源目录 row 1", "tags"),
        ("信息项!A7", "resource_code"),
    ]


def test_status_is_informational_but_a_change_to_it_is_reported(session: Session) -> None:
    codes = _catalogue(session)
    book = _edit(export_xlsx(session, actor=ROOT, codes=[codes["care"], codes["death"]]))
    book["资源目录"][f"Q{_row_of(book, codes['care'])}"] = "已发布"
    book["资源目录"][f"R{_row_of(book, codes['death'])}"] = "2020-01-01"
    with pytest.raises(ImportRejected) as caught:
        import_xlsx(session, actor=ROOT, data=_bytes(book))
    assert _where(caught) == {
        f"资源目录!Q{_row_of(book, codes['care'])}",
        f"资源目录!R{_row_of(book, codes['death'])}",
    }
    assert service.get_resource(session, actor=ROOT, code=codes["care"]).status.value == "draft"


def test_bad_json_names_each_path(session: Session) -> None:
    codes = _catalogue(session)
    document = export_json(session, actor=ROOT, codes=[codes["death"], codes["care"]])
    death, care = document["resources"]
    death["open_type"] = "sometimes"
    death["colour"] = "red"
    death["items"][1]["is_key"] = "maybe"
    care["legal_basis"] = None
    care["sharing_type"] = "有条件共享"
    with pytest.raises(ImportRejected) as caught:
        import_json(session, actor=ROOT, data=document)
    assert [p.where for p in caught.value.report.problems] == [
        "resources[0].colour",
        "resources[0].open_type",
        "resources[0].items[1].is_key",
        "resources[1].sharing_conditions",
        "resources[1].legal_basis",
    ]
    with pytest.raises(ImportRejected, match="import refused"):
        import_json(session, actor=ROOT, data=b'{"format": "csv"}')


# ---------------------------------------------------------------- who may


def test_an_org_admin_imports_only_its_own_entries(session: Session) -> None:
    codes = _catalogue(session)
    make_user(session, Role.ORG_ADMIN, org=orgs.get_org(session, code="WJW"), username="wjw")
    session.commit()
    admin = _as(session, "wjw")
    data = export_xlsx(session, actor=admin)
    seen = {row[0] for row in _cells(data)["资源目录"][1:]}
    assert codes["firms"] in seen  # published by another org: visible
    assert "103-000001" not in seen  # another org's draft: not even listed
    book = _edit(data)
    entries = book["资源目录"]
    entries[f"B{_row_of(book, codes['care'])}"] = "本单位的资源，改名"
    entries[f"B{_row_of(book, codes['firms'])}"] = "别的单位的资源"
    entries.append(_new_row("替民政登记", "MZ"))
    book["信息项"].append(["替民政登记", 1, "a", "甲"])
    entries.append(_new_row("看不见的草稿", "MZ", code="103-000001"))
    book["信息项"].append(["103-000001", 1, "a", "甲"])
    with pytest.raises(ImportRejected) as caught:
        import_xlsx(session, actor=admin, data=_bytes(book))
    last = entries.max_row
    assert _where(caught) == {
        f"资源目录!A{_row_of(book, codes['firms'])}",
        f"资源目录!F{last - 1}",
        f"资源目录!A{last}",
    }
    with pytest.raises(ImportRejected) as caught:
        import_xlsx(session, actor=admin, data=_bytes(book), restore=True)
    assert f"资源目录!A{last}" in _where(caught)  # restoring codes is the platform admin's
    entries.delete_rows(last - 1, 2)
    book["信息项"].delete_rows(book["信息项"].max_row - 1, 2)
    entries[f"B{_row_of(book, codes['firms'])}"] = service.get_resource(
        session, actor=ROOT, code=codes["firms"]
    ).name_zh
    report = import_xlsx(session, actor=admin, data=_bytes(book))
    assert report.updated == [codes["care"]]
    assert service.history(session, actor=ROOT, code=codes["care"])[0].actor == "user:wjw"


def test_export_of_named_codes(session: Session) -> None:
    codes = _catalogue(session)
    document = export_json(session, actor=ROOT, codes=[codes["firms"], codes["death"]])
    assert [r["code"] for r in document["resources"]] == [codes["death"], codes["firms"]]
    make_user(session, Role.ORG_ADMIN, org=orgs.get_org(session, code="WJW"), username="wjw")
    with pytest.raises(NotFound):
        export_xlsx(session, actor=_as(session, "wjw"), codes=["103-000001"])


def test_dry_run_changes_nothing(session: Session) -> None:
    codes = _catalogue(session)
    book = _edit(export_xlsx(session, actor=ROOT, codes=[codes["care"]]))
    book["资源目录"]["B2"] = "改名"
    book["资源目录"].append(_new_row("新资源", "WJW"))
    book["信息项"].append(["新资源", 1, "a", "甲"])
    before = _changes(session)
    report = import_xlsx(session, actor=ROOT, data=_bytes(book), dry_run=True)
    assert (report.dry_run, report.created, report.updated) == (
        True,
        ["3WJW-000002"],
        [codes["care"]],
    )
    assert "dry run" in report.summary()
    session.commit()
    assert _changes(session) == before
    assert service.get_resource(session, actor=ROOT, code=codes["care"]).name_zh != "改名"
    with pytest.raises(NotFound):
        service.get_resource(session, actor=ROOT, code="3WJW-000002")


def test_a_new_entry_starts_as_a_draft(session: Session) -> None:
    org = make_org(session, code="WJW")
    data = resource_in(org).model_dump(mode="json")
    data.pop("related")
    document = {
        "format": "haihe-catalogue",
        "version": 1,
        "resources": [data | {"status": "published", "provider_code": "NOPE"}],
    }
    with pytest.raises(ImportRejected) as caught:
        import_json(session, actor=ROOT, data=document)
    assert _where(caught) == {"resources[0].status", "resources[0].provider_code"}
    document["resources"][0] |= {"status": "草稿", "provider_code": "WJW"}
    assert import_json(session, actor=ROOT, data=document).created == ["101-000001"]
