"""Loading files into a resource: formats, encodings, rejects, keys, versions, permissions."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from factories import ROOT, make_client, make_org, make_resource, make_user
from haihe.catalogue import loading, readers, service
from haihe.catalogue.loading import LoadSource, load_resource
from haihe.catalogue.models import Load, LoadStatus, Resource, ResourceChange
from haihe.catalogue.sources import Progress
from haihe.core.auth import Principal, Role
from haihe.core.db import transaction
from haihe.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from haihe.core.identity import compose_id
from haihe.core.settings import Settings
from haihe.engine import make_store
from haihe.orgs import auth
from haihe.orgs import service as orgs
from haihe.orgs.auth import principal_of_user
from haihe.orgs.models import TokenKind

HEADER = "certificate_no,id_number,name,death_date,age"
IDS = [compose_id(11010119800101000 + 10 * i) for i in range(12)]
X_ID = next(i for i in map(compose_id, range(12010219500101001, 10**17)) if i.endswith("X"))


def rows(n: int, *, name: str = "张三", start: int = 0) -> list[tuple[str, ...]]:
    """Return ``n`` valid death-certificate rows (text) with keys C<start>…"""
    return [
        (f"C{i}", IDS[i % len(IDS)], f"{name}{i}", f"2024-01-{1 + i % 28:02d}", str(60 + i % 40))
        for i in range(start, start + n)
    ]


def csv_text(data: list[tuple[str, ...]]) -> str:
    return "\n".join([HEADER, *(",".join(r) for r in data)]) + "\n"


def load_file(
    session: Session,
    settings: Settings,
    entry: Resource,
    path: Path,
    *,
    encoding: str | None = None,
    progress: Progress | None = None,
) -> Load:
    source = LoadSource.for_file(path, encoding=encoding)
    return load_resource(
        session, actor=ROOT, settings=settings, code=entry.code, source=source, progress=progress
    )


def read_version(settings: Settings, code: str, version: int) -> pa.Table:
    store = make_store(settings)
    return pa.concat_tables(pq.read_table(p) for p in store.paths(store.manifest(code, version)))


def rejects_of(load: Load) -> list[dict[str, str]]:
    with Path(load.rejects_path or "").open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def assert_unchanged(
    factory: sessionmaker[Session],
    settings: Settings,
    code: str,
    *,
    versions: tuple[int, ...] = (1,),
) -> Load:
    """Check that version 1 is still current everywhere; return the failed load recorded."""
    with factory() as session:
        resource = session.scalars(select(Resource).where(Resource.code == code)).one()
        assert resource.current_version == 1
        failed = session.scalars(
            select(Load).where(Load.status == LoadStatus.FAILED).order_by(Load.id.desc())
        ).first()
    store = make_store(settings)
    current = store.current(code)
    assert current is not None
    assert current.version == 1
    rdir = store.root / code
    assert sorted(p.name for p in rdir.iterdir() if p.is_dir()) == [f"v{v:06d}" for v in versions]
    assert not list((settings.data_dir / "loads").rglob("*.parquet"))
    assert failed is not None
    return failed


@pytest.fixture
def entry(session: Session) -> Resource:
    resource = make_resource(session, make_org(session, code="WJW"))
    session.commit()
    return resource


# ---------------------------------------------------------------- formats and encodings


@pytest.mark.parametrize(
    ("encoding", "bom", "given", "detected"),
    [
        ("utf-8", False, None, "utf-8"),
        ("utf-8", True, None, "utf-8"),
        ("gbk", False, None, "gb18030"),
        ("gb18030", False, None, "gb18030"),
        ("gbk", False, "gbk", "gbk"),
        ("gb18030", False, "GB18030", "gb18030"),
        ("utf-8", True, "utf-8", "utf-8"),
    ],
)
def test_csv_in_each_encoding(
    session: Session,
    settings: Settings,
    entry: Resource,
    tmp_path: Path,
    encoding: str,
    bom: bool,
    given: str | None,
    detected: str,
) -> None:
    # 㐀 (CJK extension A) is in GB18030 but not in GBK
    name = "王㐀" if encoding != "gbk" else "王小明"
    body = csv_text(rows(3, name=name))
    path = tmp_path / "deaths.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + body.encode(encoding))
    load = load_file(session, settings, entry, path, encoding=given)
    assert (load.rows_read, load.rows_accepted, load.rows_rejected) == (3, 3, 0)
    assert load.source["encoding"] == detected
    table = read_version(settings, entry.code, 1)
    assert table.column("name").to_pylist() == [f"{name}0", f"{name}1", f"{name}2"]


def test_a_load_makes_a_current_version_with_its_manifest(
    session: Session, settings: Settings, entry: Resource, tmp_path: Path
) -> None:
    path = tmp_path / "deaths.csv"
    path.write_text(csv_text(rows(3)), encoding="utf-8")
    load = load_file(session, settings, entry, path)
    assert load.status is LoadStatus.SUCCEEDED
    assert (load.version, entry.current_version, entry.row_count) == (1, 1, 3)
    manifest = make_store(settings).manifest(entry.code, 1)
    assert manifest.checksum == load.checksum
    assert manifest.created_by == "system:tests"
    assert manifest.source["name"] == "deaths.csv"
    assert manifest.source["bytes"] == path.stat().st_size
    assert len(manifest.source["sha256"]) == 64
    assert [c.type for c in manifest.columns] == ["string", "string", "string", "date32", "int32"]
    assert [c.nullable for c in manifest.columns] == [False, False, True, True, True]
    table = read_version(settings, entry.code, 1)
    assert table.column("death_date").to_pylist()[0] == dt.date(2024, 1, 1)
    assert table.column("id_number").to_pylist() == IDS[:3]
    change = session.scalars(select(ResourceChange).where(ResourceChange.action == "load")).one()
    assert (change.before, change.after) == ({"version": None}, {"version": 1, "rows": 3})
    assert load.rejects_path is None


def test_an_overlapping_older_load_does_not_replace_a_newer_current_version(
    session: Session, settings: Settings, entry: Resource, tmp_path: Path
) -> None:
    path = tmp_path / "deaths.csv"
    path.write_text(csv_text(rows(3)), encoding="utf-8")
    load_file(session, settings, entry, path)
    # another load published version 7 and committed while this one was still running
    session.execute(
        update(Resource).where(Resource.id == entry.id).values(current_version=7, row_count=9)
    )
    load = load_file(session, settings, entry, path)
    assert load.version == 2
    assert (entry.current_version, entry.row_count) == (7, 9)
    path.write_text(csv_text(rows(4)), encoding="utf-8")
    session.execute(
        update(Resource).where(Resource.id == entry.id).values(current_version=1, row_count=3)
    )
    newer = load_file(session, settings, entry, path)
    assert (newer.version, entry.current_version, entry.row_count) == (3, 3, 4)


def test_columns_may_be_named_in_chinese_and_come_in_any_order(
    session: Session, settings: Settings, entry: Resource, tmp_path: Path
) -> None:
    lines = ["年龄,姓名,身份证号,死亡日期,证明编号", f"70,李四,{IDS[0]},2024/3/5,C1"]
    path = tmp_path / "deaths.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    load_file(session, settings, entry, path)
    assert read_version(settings, entry.code, 1).to_pylist() == [
        {
            "certificate_no": "C1",
            "id_number": IDS[0],
            "name": "李四",
            "death_date": dt.date(2024, 3, 5),
            "age": 70,
        }
    ]


def test_json_lines(session: Session, settings: Settings, entry: Resource, tmp_path: Path) -> None:
    records = [
        {"certificate_no": "C1", "id_number": IDS[0], "name": "甲", "death_date": "2024-01-01",
         "age": 80},
        {"certificate_no": "C2", "id_number": IDS[1], "name": None, "death_date": "20240102",
         "age": "81"},
    ]  # fmt: skip
    path = tmp_path / "deaths.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n\n")
    load = load_file(session, settings, entry, path)
    assert (load.rows_read, load.rows_accepted) == (2, 2)
    table = read_version(settings, entry.code, 1)
    assert table.column("age").to_pylist() == [80, 81]
    assert table.column("name").to_pylist() == ["甲", None]


def test_json_lines_with_a_broken_line(
    session: Session, settings: Settings, entry: Resource, tmp_path: Path
) -> None:
    good = {"certificate_no": "C1", "id_number": IDS[0], "name": "甲", "death_date": "2024-01-01",
            "age": 80}  # fmt: skip
    later = dict(good, certificate_no="C3", id_number=IDS[2])
    path = tmp_path / "deaths.ndjson"
    path.write_text(json.dumps(good) + "\n" + '{"certificate_no": "C2", \n' + json.dumps(later))
    load = load_file(session, settings, entry, path)
    assert (load.rows_read, load.rows_accepted, load.rows_rejected) == (3, 2, 1)
    rejected = rejects_of(load)
    assert rejected[0]["row"] == "2"
    assert rejected[0]["reason"].startswith("line 2: not valid JSON (Expecting property name")
    assert rejected[0]["reason"].endswith(': {"certificate_no": "C2",')


def test_parquet_in_its_own_types(
    session: Session, settings: Settings, entry: Resource, tmp_path: Path
) -> None:
    table = pa.table(
        {
            "certificate_no": ["C1", "C2"],
            "id_number": [IDS[0], IDS[1].lower()],
            "name": ["甲", "乙"],
            "death_date": pa.array([dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)]),
            "age": pa.array([70, 2**40], pa.int64()),
        }
    )
    path = tmp_path / "deaths.parquet"
    pq.write_table(table, path)
    load = load_file(session, settings, entry, path)
    assert (load.rows_read, load.rows_accepted, load.rows_rejected) == (2, 1, 1)
    assert rejects_of(load)[0]["reason"] == 'age: "1099511627776" is out of range for int32'
    version = read_version(settings, entry.code, 1)
    assert version.column("death_date").to_pylist() == [dt.date(2024, 1, 1)]


# ---------------------------------------------------------------- rejects


def test_bad_rows_go_to_the_rejects_file_with_their_reasons(
    session: Session, settings: Settings, entry: Resource, tmp_path: Path
) -> None:
    bad_check = IDS[3][:-1] + ("0" if IDS[3][-1] != "0" else "1")
    lines = [
        HEADER,
        f"C1,{IDS[0]},甲,2024-01-01,70",
        f"C2,{IDS[1]},乙,2024-13-01,七十",
        f"C3,{bad_check},丙,2024-01-03,71",
        f",{IDS[4]},丁,2024-01-04,72",
        f"C1,{IDS[5]},戊,2024-01-05,73",
        f"C6,{IDS[6]},己,2024-02-29,74,extra",
        f"C7,{IDS[7]},庚,,",
        f"C1,{IDS[8]},辛,2024-01-08,75",
    ]
    path = tmp_path / "deaths.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    load = load_file(session, settings, entry, path)
    assert (load.rows_read, load.rows_accepted, load.rows_rejected) == (8, 2, 6)
    assert load.rows_accepted + load.rows_rejected == load.rows_read
    raw = Path(load.rejects_path or "").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # so that Excel takes it for UTF-8
    assert list(rejects_of(load)[0]) == ["row", "reason", *HEADER.split(",")]
    got = {r["row"]: r["reason"] for r in rejects_of(load)}
    assert got == {
        "2": 'death_date: "2024-13-01" is not a date (YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD); '
        'age: "七十" is not an integer',
        "3": f"id_number: ID number {bad_check}: check character should be {IDS[3][-1]}, "
        f"not {bad_check[-1]}; re-enter the number from the card",
        "4": "certificate_no is empty but required",
        "5": "duplicate key certificate_no=C1 (first on row 1)",
        "6": "line 7: expected 5 values, found 6 (extra: extra)",
        "8": "duplicate key certificate_no=C1 (first on row 1)",
    }
    assert [r["row"] for r in rejects_of(load)] == ["2", "3", "4", "5", "6", "8"]
    assert rejects_of(load)[1]["id_number"] == bad_check
    assert rejects_of(load)[0]["age"] == "七十"
    version = read_version(settings, entry.code, 1)
    assert version.column("certificate_no").to_pylist() == ["C1", "C7"]
    assert version.column("name").to_pylist() == ["甲", "庚"]


def test_legacy_15_digit_ids_become_18(
    session: Session, settings: Settings, entry: Resource, tmp_path: Path
) -> None:
    spaced = f"\u3000{X_ID[:6]} {X_ID[6:-1]}x "
    lines = [HEADER, "C1,110101800101001,甲,2024-01-01,70", f"C2,{spaced},乙,,"]
    path = tmp_path / "deaths.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    load_file(session, settings, entry, path)
    ids = read_version(settings, entry.code, 1).column("id_number").to_pylist()
    assert ids == [compose_id(11010119800101001), X_ID]


def test_types_convert_or_reject(session: Session, settings: Settings, tmp_path: Path) -> None:
    items = [
        {"name": "code", "name_zh": "编码", "type": "int64", "is_key": True, "nullable": False},
        {"name": "alive", "name_zh": "是否在世", "type": "bool"},
        {"name": "pension", "name_zh": "养老金", "type": "decimal(10,2)"},
        {"name": "score", "name_zh": "评分", "type": "float64"},
        {"name": "seen_at", "name_zh": "时间", "type": "timestamp[us, UTC]"},
        {"name": "local_at", "name_zh": "本地时间", "type": "timestamp[us]"},
    ]
    entry = make_resource(session, make_org(session, code="MZ"), items=items)
    lines = [
        "code,alive,pension,score,seen_at,local_at",
        "1,是,1234.5,1e3,2024-01-05T10:00:00Z,2024-01-05 10:00",
        "2,FALSE,-0.05,.5,2024-01-05 10:00:00,2024-01-05",
        "3,也许,1.234,x,2024-01-05 25:00,2024-01-05T10:00+08:00",
        "99999999999999999999,0,,,,",
    ]
    path = tmp_path / "values.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    load = load_file(session, settings, entry, path)
    assert (load.rows_read, load.rows_accepted, load.rows_rejected) == (4, 2, 2)
    utc = dt.UTC
    assert read_version(settings, entry.code, 1).to_pylist() == [
        {"code": 1, "alive": True, "pension": decimal.Decimal("1234.50"),
         "score": 1000.0, "seen_at": dt.datetime(2024, 1, 5, 10, tzinfo=utc),
         "local_at": dt.datetime(2024, 1, 5, 10)},
        {"code": 2, "alive": False, "pension": decimal.Decimal("-0.05"),
         "score": 0.5, "seen_at": dt.datetime(2024, 1, 5, 2, tzinfo=utc),
         "local_at": dt.datetime(2024, 1, 5)},
    ]  # fmt: skip
    reasons = [r["reason"] for r in rejects_of(load)]
    assert reasons == [
        'alive: "也许" is not a yes/no value (是/否, true/false, 1/0); '
        'pension: "1.234" does not fit decimal(10,2); score: "x" is not a number; '
        'seen_at: "2024-01-05 25:00" is not an ISO 8601 timestamp (YYYY-MM-DD HH:MM:SS); '
        'local_at: "2024-01-05T10:00+08:00" has a time-zone offset, but this item holds '
        "local times",
        'code: "99999999999999999999" is out of range for int64',
    ]


def test_when_no_row_is_accepted_nothing_is_loaded(
    session_factory: sessionmaker[Session], settings: Settings, entry: Resource, tmp_path: Path
) -> None:
    first = tmp_path / "first.csv"
    first.write_text(csv_text(rows(2)), encoding="utf-8")
    with transaction(session_factory) as session:
        load_file(session, settings, entry, first)
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "\n,,,,\nC1,1,,,\n", encoding="utf-8")
    with (
        pytest.raises(InvalidInput, match=r"none of the 2 rows of bad.csv was accepted \(row 1: "),
        transaction(session_factory) as session,
    ):
        load_file(session, settings, entry, path)
    failed = assert_unchanged(session_factory, settings, entry.code)
    assert (failed.rows_read, failed.rows_rejected) == (2, 2)
    assert failed.rejects_path is not None
    assert len(rejects_of(failed)) == 2


# ---------------------------------------------------------------- bad input


def _broken_parquet(path: Path) -> Path:
    pq.write_table(pa.table({"certificate_no": ["C1"]}), path)
    path.write_bytes(path.read_bytes()[:-20])
    return path


BAD_FILES: list[tuple[str, Callable[[Path], Path], dict[str, str], str]] = [
    (
        "gbk read as utf-8",
        lambda p: _write(p / "d.csv", csv_text(rows(2, name="张三")).encode("gbk")),
        {"encoding": "utf-8"},
        r"d.csv is not valid UTF-8 at byte offset 67: try --encoding gb18030",
    ),
    (
        "gb18030 read as gbk",
        lambda p: _write(p / "d.csv", csv_text(rows(2, name="王㐀")).encode("gb18030")),
        {"encoding": "gbk"},
        r"d.csv is not valid GBK at byte offset 69: try --encoding gb18030",
    ),
    (
        "utf-8 read as gbk",
        lambda p: _write(p / "d.csv", csv_text(rows(2, name="张三")).encode("utf-8")),
        {"encoding": "gbk"},
        r"d.csv looks like UTF-8, not GBK: try --encoding utf-8",
    ),
    (
        "column missing",
        lambda p: _write(p / "d.csv", b"certificate_no,id_number,name,death_date\nC1,1,2,3\n"),
        {},
        r"d.csv does not match the data items: missing column age \(expected: certificate_no, ",
    ),
    (
        "column extra",
        lambda p: _write(p / "d.csv", (HEADER + ",remark,note\n").encode()),
        {},
        r"d.csv does not match the data items: extra columns remark, note",
    ),
    (
        "broken parquet",
        lambda p: _broken_parquet(p / "d.parquet"),
        {},
        r"d.parquet is not a readable Parquet file: ",
    ),
    (
        "not parquet at all",
        lambda p: _write(p / "d.parquet", b"certificate_no\nC1\n"),
        {},
        r"d.parquet is not a readable Parquet file: ",
    ),
    ("empty file", lambda p: _write(p / "d.csv", b""), {}, r"d.csv is empty"),
    ("header only", lambda p: _write(p / "d.csv", HEADER.encode()), {}, r"holds no data rows"),
]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "options", "message"),
    [pytest.param(m, o, msg, id=label) for label, m, o, msg in BAD_FILES],
)
def test_bad_input_changes_nothing(
    session_factory: sessionmaker[Session],
    settings: Settings,
    entry: Resource,
    tmp_path: Path,
    make: Callable[[Path], Path],
    options: dict[str, str],
    message: str,
) -> None:
    first = tmp_path / "first.csv"
    first.write_text(csv_text(rows(2)), encoding="utf-8")
    with transaction(session_factory) as session:
        load_file(session, settings, entry, first)
    bad = make(tmp_path)
    with pytest.raises(InvalidInput, match=message), transaction(session_factory) as session:
        load_file(session, settings, entry, bad, **options)
    failed = assert_unchanged(session_factory, settings, entry.code)
    assert failed.error is not None
    assert failed.rows_accepted == 0


def test_unknown_suffix_or_encoding_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"cannot tell the format of d.xlsx from its name"):
        LoadSource.for_file(tmp_path / "d.xlsx")
    with pytest.raises(InvalidInput, match=r"unknown encoding 'latin-9000'; use utf-8, gbk"):
        LoadSource.for_file(tmp_path / "d.csv", encoding="latin-9000")
    with pytest.raises(InvalidInput, match=r"--encoding applies to CSV and JSON Lines"):
        LoadSource.for_file(tmp_path / "d.parquet", encoding="gbk")


def test_a_rolled_back_transaction_puts_the_previous_version_back(
    session_factory: sessionmaker[Session], settings: Settings, entry: Resource, tmp_path: Path
) -> None:
    path = tmp_path / "deaths.csv"
    path.write_text(csv_text(rows(2)), encoding="utf-8")
    with transaction(session_factory) as session:
        load_file(session, settings, entry, path)
    path.write_text(csv_text(rows(3)), encoding="utf-8")
    published: list[int] = []

    def load_then_fail() -> None:
        with transaction(session_factory) as session:
            published.append(load_file(session, settings, entry, path).version or 0)
            raise RuntimeError("a later step of the same request failed")

    with pytest.raises(RuntimeError, match="later step"):
        load_then_fail()
    assert published == [2]
    failed = assert_unchanged(session_factory, settings, entry.code, versions=(1, 2))
    assert failed.error == "the load's transaction was rolled back; its version was not published"


# ---------------------------------------------------------------- who may load


def _principal(session: Session, username: str) -> Principal:
    principal = principal_of_user(orgs.get_user(session, username=username))
    assert principal is not None
    return principal


def test_who_may_load(session: Session, settings: Settings, tmp_path: Path) -> None:
    wjw, mz = make_org(session, code="WJW"), make_org(session, code="MZ")
    make_user(session, Role.OPERATOR, org=wjw, username="wjw_op")
    make_user(session, Role.ORG_ADMIN, org=mz, username="mz_admin")
    make_user(session, Role.RESIDENT, username="resident")
    client, secret = make_client(session, wjw)
    entry = make_resource(session, wjw)
    session.commit()
    path = tmp_path / "deaths.csv"
    path.write_text(csv_text(rows(2)), encoding="utf-8")
    source = LoadSource.for_file(path)

    def load(actor: Principal) -> Load:
        return load_resource(
            session, actor=actor, settings=settings, code=entry.code, source=source
        )

    with pytest.raises(NotFound):  # another organisation's draft is not even visible
        load(_principal(session, "mz_admin"))
    service.publish(session, actor=ROOT, code=entry.code)
    for outsider in ("mz_admin", "resident"):
        with pytest.raises(Forbidden, match="only the provider's admins, operators and API"):
            load(_principal(session, outsider))
    assert load(_principal(session, "wjw_op")).version == 1
    token, _ = auth.issue_client_token(
        session, settings=settings, client_id=client.client_id, client_secret=secret
    )
    api_client = auth.principal_for_token(session, token, kind=TokenKind.API)
    assert api_client is not None
    assert load(api_client).version == 2
    assert make_store(settings).manifest(entry.code, 2).created_by == f"client:{api_client.name}"


def test_a_retired_entry_takes_no_data(
    session: Session, settings: Settings, entry: Resource, tmp_path: Path
) -> None:
    service.publish(session, actor=ROOT, code=entry.code)
    service.retire(session, actor=ROOT, code=entry.code)
    path = tmp_path / "deaths.csv"
    path.write_text(csv_text(rows(1)), encoding="utf-8")
    with pytest.raises(Conflict, match="is retired"):
        load_file(session, settings, entry, path)


def test_progress_counts_bytes(
    session: Session, settings: Settings, entry: Resource, tmp_path: Path
) -> None:
    path = tmp_path / "deaths.csv"
    path.write_text(csv_text(rows(50)), encoding="utf-8")
    seen: list[tuple[int, int | None]] = []
    load_file(
        session, settings, entry, path, progress=lambda done, total: seen.append((done, total))
    )
    size = path.stat().st_size
    assert seen[-1] == (size, size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


# ---------------------------------------------------------------- large files


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_a_file_of_many_blocks_keeps_its_row_numbers(
    session: Session, settings: Settings, entry: Resource, tmp_path: Path, encoding: str
) -> None:
    broken = {3, 20_000, 49_999}
    lines = [HEADER]
    for i in range(1, 50_001):
        cells = [f"C{i}", IDS[i % len(IDS)], f"名{i}", "2024-01-01", str(i % 100)]
        lines.append(",".join(cells + (["extra"] if i in broken else [])))
    path = tmp_path / "deaths.csv"
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    assert path.stat().st_size > 2 << 20  # the parser reads it in several blocks
    load = load_file(session, settings, entry, path)
    assert load.source["encoding"] == encoding
    assert (load.rows_read, load.rows_accepted, load.rows_rejected) == (50_000, 49_997, 3)
    assert [(r["row"], r["reason"]) for r in rejects_of(load)] == [
        (str(i), f"line {i + 1}: expected 5 values, found 6 (extra: extra)") for i in sorted(broken)
    ]
    version = read_version(settings, entry.code, 1)
    assert version.column("certificate_no").to_pylist() == [
        f"C{i}" for i in range(1, 50_001) if i not in broken
    ]
    assert version.column("name").to_pylist()[-1] == "名50000"


def test_duplicate_keys_are_found_across_the_whole_file(
    session: Session, settings: Settings, entry: Resource, tmp_path: Path
) -> None:
    keys = ["A", "B", "A", "C", "B", "D", "A", "E", "C", "F"]
    lines = [HEADER] + [f"{k},{IDS[i]},名,2024-01-01,1" for i, k in enumerate(keys)]
    path = tmp_path / "deaths.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    load = load_file(session, settings, entry, path)
    assert (load.rows_read, load.rows_accepted, load.rows_rejected) == (10, 6, 4)
    assert [(r["row"], r["reason"], r["id_number"]) for r in rejects_of(load)] == [
        ("3", "duplicate key certificate_no=A (first on row 1)", IDS[2]),
        ("5", "duplicate key certificate_no=B (first on row 2)", IDS[4]),
        ("7", "duplicate key certificate_no=A (first on row 1)", IDS[6]),
        ("9", "duplicate key certificate_no=C (first on row 4)", IDS[8]),
    ]
    version = read_version(settings, entry.code, 1)
    assert version.column("certificate_no").to_pylist() == ["A", "B", "C", "D", "E", "F"]
    assert version.column("id_number").to_pylist() == [IDS[i] for i in (0, 1, 3, 5, 7, 9)]


def test_composite_keys(session: Session, settings: Settings, tmp_path: Path) -> None:
    items = [
        {"name": "district", "name_zh": "区", "is_key": True, "nullable": False},
        {"name": "year", "name_zh": "年度", "type": "int32", "is_key": True, "nullable": False},
        {"name": "people", "name_zh": "人数", "type": "int64"},
    ]
    entry = make_resource(session, make_org(session, code="TJ"), items=items)
    path = tmp_path / "counts.csv"
    path.write_text("district,year,people\n和平,2023,1\n和平,2024,2\n河东,2023,3\n和平,2024,4\n")
    load = load_file(session, settings, entry, path)
    assert (load.rows_accepted, load.rows_rejected) == (3, 1)
    assert rejects_of(load)[0]["reason"] == (
        "duplicate key district=和平, year=2024 (first on row 2)"
    )


@pytest.mark.parametrize(
    ("configured", "used"),
    [("4GB", "256.0 MiB"), ("100MB", "95.3 MiB"), ("0.125GiB", "128.0 MiB"), ("lots", "256.0 MiB")],
)
def test_a_load_holds_the_engine_to_a_fixed_share_of_memory(
    tmp_path: Path, configured: str, used: str
) -> None:
    settings = Settings(data_dir=tmp_path, duckdb_memory_limit=configured)
    with loading._engine(settings) as engine:
        con = engine._backend.con  # type: ignore[attr-defined]
        assert con.execute("SELECT current_setting('memory_limit')").fetchone() == (used,)


def test_broken_rows_at_the_edges_keep_the_numbering(
    session: Session, settings: Settings, entry: Resource, tmp_path: Path
) -> None:
    good = [",".join(r) for r in rows(3)]
    lines = [HEADER, "C8,x", "C9", good[0], '"C10",2,3,4,5,6', good[1], good[2], "C11"]
    path = tmp_path / "deaths.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    load = load_file(session, settings, entry, path)
    assert (load.rows_read, load.rows_accepted, load.rows_rejected) == (7, 3, 4)
    assert [(r["row"], r["certificate_no"]) for r in rejects_of(load)] == [
        ("1", "C8"),
        ("2", "C9"),
        ("4", "C10"),
        ("7", "C11"),
    ]
    assert rejects_of(load)[2]["reason"] == "line 5: expected 5 values, found 6 (extra: 6)"


def test_json_lines_in_many_blocks(
    session: Session,
    settings: Settings,
    entry: Resource,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(readers, "_JSON_BLOCK", 300)  # a few lines per block
    records = [
        {"certificate_no": f"C{i}", "id_number": IDS[i % len(IDS)], "name": f"名{i}",
         "death_date": "2024-01-01", "age": i}
        for i in range(1, 41)
    ]  # fmt: skip
    records[29]["remark"] = "not an item"  # a field that the first block did not have
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    lines[9] = "[1, 2]"  # a whole block parsed line by line
    path = tmp_path / "deaths.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    load = load_file(session, settings, entry, path)
    assert (load.rows_read, load.rows_accepted, load.rows_rejected) == (40, 38, 2)
    assert [(r["row"], r["reason"]) for r in rejects_of(load)] == [
        ("10", "line 10: not a JSON object: [1, 2]"),
        ("30", "fields that are not data items: remark"),
    ]
    ages = read_version(settings, entry.code, 1).column("age").to_pylist()
    assert ages == [i for i in range(1, 41) if i not in (10, 30)]


def test_json_lines_with_a_field_that_is_no_item(
    session: Session, settings: Settings, entry: Resource, tmp_path: Path
) -> None:
    record = {"certificate_no": "C1", "id_number": IDS[0], "name": "甲",
              "death_date": "2024-01-01", "age": 1, "remark": "x"}  # fmt: skip
    path = tmp_path / "deaths.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="extra column remark"):
        load_file(session, settings, entry, path)
