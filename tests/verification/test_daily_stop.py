"""The daily pension stop: a new version of the death records puts the newly dead on a stop list
(a scenario job); without one, the task does nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
from sqlalchemy.orm import Session, sessionmaker
from verify_world import ID, SOURCES, build_world, grant_all, item, pid, write_csv

from factories import ROOT, make_resource
from haihe.background import register_background_work
from haihe.catalogue import service as catalogue
from haihe.catalogue.loading import LoadSource, load_resource
from haihe.core import jobs as periodic
from haihe.core.settings import Settings
from haihe.orgs import repository as orgs_repo
from haihe.verification import daily, jobs, service

NOW = dt.datetime(2025, 1, 1, 2, tzinfo=dt.UTC)  # 10:00 in the city, 1 January 2025
PAYMENTS = [
    {"no": f"P{i}", "id_number": pid(i), "pension_no": f"P{i:03d}", "monthly_amount": 3000 + i,
     "status": "终止发放" if i == 4 else "正常发放"}
    for i in range(6)
]  # fmt: skip


def stop_list(settings: Settings, job_id: int) -> dict[str, float]:
    result = pq.read_table(jobs.job_dir(settings, job_id) / "result.parquet").to_pylist()
    return {r["pension_no"]: r["overpayment_avoided"] for r in result if r["outcome"] == "stop"}


def test_new_death_records_put_the_newly_dead_on_a_stop_list_once(
    session: Session, session_factory: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    world = build_world(session, settings, tmp_path / "in")
    grant_all(session, world)
    rsj = orgs_repo.org_by_code(session, "RSJ")
    assert rsj is not None
    items = [item("no", key=True), ID, item("pension_no"), item("monthly_amount", "int64"),
             item("status")]  # fmt: skip
    pensions = make_resource(session, rsj, items=items)  # RSJ's own list: no grant needed
    catalogue.publish(session, actor=ROOT, code=pensions.code)
    load_resource(
        session, actor=ROOT, settings=settings, code=pensions.code,
        source=LoadSource.for_file(write_csv(tmp_path / "pensions.csv", PAYMENTS)),
    )  # fmt: skip
    service.bind(session, actor=ROOT, role="pensions", code=pensions.code)
    session.commit()

    first = daily.run_daily_stop(session_factory, settings, now=NOW)
    assert first["ran"]
    assert first["status"] == "succeeded"
    # pid(0) has a death certificate, pid(2) a cremation; pid(1) dies later; P004 is stopped
    assert stop_list(settings, first["job"]) == {"P000": 3000 * 12, "P002": 3002 * 12}
    assert (first["stop"], first["previous_job"], first["new"]) == (2, None, 2)
    with session_factory() as s:
        job = jobs.get_job(s, actor=ROOT, job_id=first["job"])
        assert (job.kind, job.rule, job.requested_by) == ("scenario", "pension_death_stop",
                                                          daily.DAILY_ACTOR)  # fmt: skip
        assert job.org_id == rsj.id  # RSJ's job, on its console
        assert job.summary["outcomes"]["already_stopped"] == 1

    again = daily.run_daily_stop(session_factory, settings, now=NOW + dt.timedelta(days=1))
    assert again == {"ran": False, "reason": f"no new death records since job {first['job']}"}

    deaths = [*SOURCES["deaths"][2], {"no": "D3", "id_number": pid(3), "death_date": "2024-12-30"}]
    load_resource(
        session, actor=ROOT, settings=settings, code=world.codes["deaths"],
        source=LoadSource.for_file(write_csv(tmp_path / "deaths-2.csv", deaths)),
    )  # fmt: skip
    session.commit()
    second = daily.run_daily_stop(session_factory, settings, now=NOW + dt.timedelta(days=1))
    assert stop_list(settings, second["job"]) == {
        "P000": 3000 * 12, "P002": 3002 * 12, "P003": 3003 * 12
    }  # fmt: skip
    assert (second["previous_job"], second["new"]) == (first["job"], 1)  # only pid(3) is new
    with session_factory() as s:
        job = jobs.get_job(s, actor=ROOT, job_id=second["job"])
        assert {x["role"]: x["version"] for x in job.sources}["deaths"] == 2
        assert job.summary["daily"] == {"previous_job": first["job"], "new": 1}

    # the registered periodic task is this one: with nothing new it runs and does nothing
    register_background_work(settings)
    runs = periodic.run_due(
        session_factory, settings=settings, tasks=[periodic.find_task(daily.TASK)], force=True
    )
    assert [(r.outcome, r.result) for r in runs] == [
        ("ok", str({"ran": False, "reason": f"no new death records since job {second['job']}"}))
    ]


def test_without_a_pension_list_bound_the_task_says_so(
    session: Session, session_factory: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    build_world(session, settings, tmp_path / "in")
    found = daily.run_daily_stop(session_factory, settings, now=NOW)
    assert found == {"ran": False, "reason": "source roles not bound: pensions"}
