"""Rules against hand-made sources with known truth: single checks, batch jobs, grants, audit."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from verify_world import World, build_world, grant_all, pid, write_csv

from factories import ROOT
from haihe.audit import chain, citizen, subject_sets
from haihe.audit.models import AuditEntry
from haihe.catalogue.loading import LoadSource, load_resource
from haihe.catalogue.models import Resource
from haihe.core.auth import Principal
from haihe.core.db import transaction
from haihe.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from haihe.core.masking import pseudonymise
from haihe.core.settings import Settings
from haihe.exchange import decisions
from haihe.exchange.models import Grant
from haihe.orgs import repository as orgs_repo
from haihe.orgs.auth import principal_of_user
from haihe.verification import jobs
from haihe.verification.checks import check_subjects
from haihe.verification.models import JobStatus
from haihe.verification.schemas import SubjectIn

BAD_ID = pid(0)[:17] + ("0" if pid(0)[17] != "0" else "1")


@pytest.fixture
def world(session: Session, settings: Settings, tmp_path: Path) -> World:
    built = build_world(session, settings, tmp_path / "in")
    grant_all(session, built)
    return built


def rsj(session: Session) -> Principal:
    user = orgs_repo.user_by_username(session, "rsj_op")
    assert user is not None
    found = principal_of_user(user)
    assert found is not None
    return found


def single(
    factory: sessionmaker[Session], settings: Settings, rule: str, ids: list[str], **params: Any
) -> list[tuple[str, list[str]]]:
    with transaction(factory) as s:
        out = check_subjects(
            s,
            actor=rsj(s),
            settings=settings,
            rule_name=rule,
            subjects=[SubjectIn(id_number=i) for i in ids],
            params=params,
            request_id="req-1",
        )
    return [(a.verdict, a.reasons) for a in out.answers]


def batch(
    factory: sessionmaker[Session],
    settings: Settings,
    tmp_path: Path,
    rule: str,
    ids: list[str],
    chunk_rows: int = 2,
    **params: Any,
) -> list[tuple[str, list[str]]]:
    path = write_csv(tmp_path / "subjects.csv", [{"id_number": i} for i in ids])
    with transaction(factory) as s:
        job = jobs.create_job(
            s,
            actor=rsj(s),
            settings=settings,
            name=rule,
            params=params,
            input_path=path,
            chunk_rows=chunk_rows,
        )
        job_id = job.id
    assert jobs.run_job(factory, settings, job_id) is JobStatus.SUCCEEDED
    result = pq.read_table(jobs.job_dir(settings, job_id) / "result.parquet").to_pylist()
    return [(r["verdict"], [x for x in r["reasons"].split(";") if x]) for r in result]


ALIVE_CASES = [
    (pid(0), ("no", ["death_certificate", "cremation_record"])),
    (pid(1), ("yes", ["no_record_of_death"])),  # dies in 2025, after the date asked
    (pid(2), ("no", ["cremation_record"])),
    (pid(3), ("yes", ["no_record_of_death"])),
    (BAD_ID, ("unknown", ["id_check_char"])),
    ("", ("unknown", ["id_empty"])),
]


def test_alive_single_checks_give_the_known_truth(
    world: World, session_factory: sessionmaker[Session], settings: Settings
) -> None:
    ids = [i for i, _ in ALIVE_CASES]
    got = single(session_factory, settings, "alive", ids, on="2024-12-31")
    assert got == [truth for _, truth in ALIVE_CASES]


def test_a_batch_job_gives_the_same_answers_as_single_checks_in_input_order(
    world: World, session_factory: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    ids = [i for i, _ in ALIVE_CASES]
    got = batch(session_factory, settings, tmp_path, "alive", ids, on="2024-12-31")
    assert got == [truth for _, truth in ALIVE_CASES]


@pytest.mark.parametrize(
    ("rule", "params", "truth"),
    [
        ("low_income_holder", {"on": "2024-06-01"}, {3: "yes", 4: "no", 5: "no", 6: "no"}),
        ("registered_resident", {}, {0: "yes", 1: "no", 5: "yes", 6: "no"}),
        ("age_at_least", {"n": 70, "on": "2024-03-01"}, {3: "yes", 4: "yes", 5: "no"}),
        (
            "evidence_of_life",
            {"since": "2024-05-01", "until": "2024-05-31", "sources": "transit,medical"},
            {6: "yes", 7: "no", 0: "no"},
        ),
        (
            "evidence_of_life",
            {"since": "2024-01-01", "until": "2024-01-31", "sources": "medical"},
            {6: "no", 7: "yes"},
        ),
    ],
)
def test_rules_agree_with_the_truth_on_both_paths(
    world: World,
    session_factory: sessionmaker[Session],
    settings: Settings,
    tmp_path: Path,
    rule: str,
    params: dict[str, Any],
    truth: dict[int, str],
) -> None:
    ids = [pid(i) for i in truth]
    expected = list(truth.values())
    one = [v for v, _ in single(session_factory, settings, rule, ids, **params)]
    many = [v for v, _ in batch(session_factory, settings, tmp_path, rule, ids, **params)]
    assert one == expected
    assert many == expected


def test_a_legacy_15_digit_id_matches_its_18_digit_record(
    world: World, session_factory: sessionmaker[Session], settings: Settings
) -> None:
    number = pid(0)
    legacy = number[:6] + number[8:17]  # 15 digits: 2-digit year, no check character
    got = single(session_factory, settings, "alive", [legacy, number.lower()], on="2024-12-31")
    assert [v for v, _ in got] == ["no", "no"]


def test_a_check_is_audited_per_source_with_pseudonyms_and_no_rows(
    world: World, session: Session, session_factory: sessionmaker[Session], settings: Settings
) -> None:
    single(session_factory, settings, "alive", [pid(0), pid(3), BAD_ID], on="2024-12-31")
    found = list(
        session.scalars(select(AuditEntry).where(AuditEntry.action == "verification.check"))
    )
    assert sorted(e.resource_code for e in found) == sorted(
        [world.codes["deaths"], world.codes["cremations"]]
    )
    assert {e.mode for e in found} == {"verify"}
    assert {e.rows for e in found} == {0}
    assert {e.subjects for e in found} == {2}  # the invalid ID names nobody
    assert json.loads(found[0].detail_json or "{}")["verdicts"] == {"yes": 1, "no": 1, "unknown": 1}


def test_without_verify_grants_the_check_is_refused_naming_them_and_audited(
    session: Session, session_factory: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    world = build_world(session, settings, tmp_path / "in")
    grant_all(session, world, roles=["deaths"])
    with pytest.raises(Forbidden) as caught:
        single(session_factory, settings, "alive", [pid(0)])
    missing = caught.value.details["missing_grants"]
    assert [m["role"] for m in missing] == ["cremations"]
    session.expire_all()
    refused = session.scalars(select(AuditEntry).where(AuditEntry.outcome == "refused")).one()
    assert json.loads(refused.detail_json or "{}")["missing_grants"] == missing


def test_an_unknown_rule_is_not_found(
    world: World, session_factory: sessionmaker[Session], settings: Settings
) -> None:
    with pytest.raises(NotFound, match="no verification rule 'immortal'"):
        single(session_factory, settings, "immortal", [pid(0)])


def test_a_bad_parameter_is_invalid_input(
    world: World, session_factory: sessionmaker[Session], settings: Settings
) -> None:
    with pytest.raises(InvalidInput, match="must be a date"):
        single(session_factory, settings, "alive", [pid(0)], on="yesterday-ish")


def test_an_unbound_source_is_a_conflict_naming_the_bind_command(
    session: Session, session_factory: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    build_world(session, settings, tmp_path / "in", bind=False)
    with pytest.raises(Conflict, match="haihe verify bind household"):
        single(session_factory, settings, "registered_resident", [pid(0)])


def test_a_source_with_no_current_version_is_not_found(
    session: Session, session_factory: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    world = build_world(session, settings, tmp_path / "in", load=False)
    grant_all(session, world)
    with pytest.raises(NotFound, match="has no current version"):
        single(session_factory, settings, "registered_resident", [pid(0)])


def test_a_subject_file_without_id_numbers_is_refused(
    world: World, session: Session, settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "bad.csv", [{"sfzh": pid(0)}])
    with pytest.raises(InvalidInput, match="no column 'id_number'"):
        jobs.create_job(
            session,
            actor=rsj(session),
            settings=settings,
            name="alive",
            params={},
            input_path=path,
        )


def test_a_gbk_file_with_a_bom_and_empty_lines_keeps_every_subject(
    world: World, session_factory: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "gbk.csv"
    text = f"id_number,name\r\n{pid(0)},张三\r\n\r\n{BAD_ID},李四\r\n{pid(3)},王五\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    gbk = tmp_path / "gbk2.csv"
    gbk.write_bytes(text.encode("gbk"))
    for source in (path, gbk):
        with transaction(session_factory) as s:
            job_id = jobs.create_job(
                s,
                actor=rsj(s),
                settings=settings,
                name="alive",
                params={"on": dt.date(2024, 12, 31)},
                input_path=source,
            ).id
        jobs.run_job(session_factory, settings, job_id)
        result = pq.read_table(jobs.job_dir(settings, job_id) / "result.parquet")
        assert result["verdict"].to_pylist() == ["no", "unknown", "yes"]


def test_an_interrupted_job_resumes_without_redoing_finished_chunks(
    world: World,
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    tmp_path: Path,
) -> None:
    ids = [pid(i) for i in range(6)]
    path = write_csv(tmp_path / "subjects.csv", [{"id_number": i} for i in ids])
    with transaction(session_factory) as s:
        job_id = jobs.create_job(
            s,
            actor=rsj(s),
            settings=settings,
            name="alive",
            params={"on": "2024-12-31"},
            input_path=path,
            chunk_rows=2,
        ).id

    def crash(done: int, total: int) -> None:
        if done == 1:
            raise KeyboardInterrupt  # the process dies after its first chunk

    with pytest.raises(KeyboardInterrupt):
        jobs.run_job(session_factory, settings, job_id, progress=crash)
    folder = jobs.job_dir(settings, job_id)
    first = folder / "chunk_00000.parquet"
    stamp = first.stat().st_mtime_ns
    reported: list[tuple[int, int, int]] = []

    def watch(done: int, total: int) -> None:  # the first chunk's file is not written again
        reported.append((done, total, first.stat().st_mtime_ns))

    assert jobs.run_job(session_factory, settings, job_id, progress=watch) is JobStatus.SUCCEEDED
    assert reported == [(2, 3, stamp), (3, 3, stamp)]
    # once done, only the result stays: the working files held every subject's ID number
    assert sorted(p.name for p in folder.iterdir()) == ["result.parquet"]
    session.expire_all()
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "verification.job").order_by(AuditEntry.id)
    ).all()
    assert len(entries) == 3 * 2  # three chunks, two sources each: every chunk audited once
    # each chunk's persons are kept once, as a set both its entries point at; a resident sees
    # the uses of their records (before the sets are indexed and after)
    key = settings.secret_key_bytes()
    resident = Principal(
        kind="user", id=1, name="居民", org_id=None, org_code=None, roles=frozenset(),
        subject=pseudonymise(key, ids[2]),
    )  # fmt: skip
    for _ in range(2):
        seen = citizen.uses_of_my_data(session, actor=resident, settings=settings)
        assert sorted(e.seq for e in seen) == sorted(e.seq for e in entries[2:4])
        assert {e.subjects for e in seen} == {2}
        assert {e.subjects_digest for e in seen} == {
            chain.subjects_digest([pseudonymise(key, i) for i in ids[2:4]])
        }
        assert subject_sets.index_pending(session_factory, settings).members in (0, 6)
        session.expire_all()


def test_the_grant_is_checked_on_every_check_not_kept_between_them(
    world: World, session: Session, session_factory: sessionmaker[Session], settings: Settings
) -> None:
    assert single(session_factory, settings, "alive", [pid(3)], on="2024-12-31") == [
        ("yes", ["no_record_of_death"])
    ]
    deaths = session.scalars(
        select(Grant).join(Resource).where(Resource.code == world.codes["deaths"])
    ).one()
    decisions.revoke(session, actor=ROOT, grant_id=deaths.id, reason="用途已结束")
    session.commit()
    with pytest.raises(Forbidden) as caught:
        single(session_factory, settings, "alive", [pid(3)], on="2024-12-31")
    assert [m["role"] for m in caught.value.details["missing_grants"]] == ["deaths"]


def test_a_new_version_of_a_source_is_consulted_at_once(
    world: World, session: Session, session_factory: sessionmaker[Session], settings: Settings,
    tmp_path: Path,
) -> None:  # fmt: skip
    assert single(session_factory, settings, "alive", [pid(3)], on="2024-12-31") == [
        ("yes", ["no_record_of_death"])
    ]
    rows = [{"no": "D3", "id_number": pid(3), "death_date": "2024-07-01"}]
    load_resource(
        session,
        actor=ROOT,
        settings=settings,
        code=world.codes["deaths"],
        source=LoadSource.for_file(write_csv(tmp_path / "deaths-v2.csv", rows)),
    )
    session.commit()
    with transaction(session_factory) as s:
        out = check_subjects(
            s,
            actor=rsj(s),
            settings=settings,
            rule_name="alive",
            subjects=[SubjectIn(id_number=pid(3))],
            params={"on": "2024-12-31"},
            request_id="req-2",
        )
    assert (out.answers[0].verdict, out.answers[0].reasons) == ("no", ["death_certificate"])
    versions = {s.role: s.version for s in out.sources}
    assert versions == {"deaths": 2, "cremations": 1}


def test_a_chunk_written_in_the_older_wider_layout_is_resumed_into_the_same_result(
    world: World,
    session_factory: sessionmaker[Session],
    settings: Settings,
    tmp_path: Path,
) -> None:
    """Chunk files once also held each subject's ID number, body, confidence and match; a job
    interrupted then and resumed now takes those from its subjects, once each."""
    ids = [pid(i) for i in range(4)]
    path = write_csv(tmp_path / "subjects.csv", [{"id_number": i} for i in ids])
    with transaction(session_factory) as s:
        job_id = jobs.create_job(
            s, actor=rsj(s), settings=settings, name="alive", params={"on": "2024-12-31"},
            input_path=path, chunk_rows=2,
        ).id  # fmt: skip

    def crash(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        jobs.run_job(session_factory, settings, job_id, progress=crash)
    first = jobs.job_dir(settings, job_id) / "chunk_00000.parquet"
    older = pq.read_table(first)
    for column, values in (("id_number", ["旧", "旧"]), ("body", [-1, -1]),
                           ("confidence", [0.0, 0.0]), ("match", ["none", "none"])):  # fmt: skip
        older = older.append_column(column, pa.array(values))
    pq.write_table(older, first)
    # the first chunk was counted before the crash: make the resume assemble it as it is
    assert jobs.run_job(session_factory, settings, job_id) is JobStatus.SUCCEEDED
    with session_factory() as s:
        job = jobs.get_job(s, actor=rsj(s), job_id=job_id)
        result = pq.read_table(jobs.result_path(settings, job))
    assert result.column_names == [
        "row", "id_number", "verdict", "reasons", "confidence", "match"
    ]  # fmt: skip
    assert result["id_number"].to_pylist() == ids
    assert result["match"].to_pylist() == ["id"] * 4
