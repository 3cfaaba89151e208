"""The daily death-triggered pension stop — 死亡人员养老金每日停发比对.

Deaths reach the registers every day (medical death certificates, cremations); a pension paid
after death is money the fund must claw back. So a periodic task watches the sources the
``pension_death_stop`` scenario reads about deaths: when one of them has a current version that
the last daily run did not consult, it runs the scenario as a job of kind *scenario* — over the
pension list itself (the current version of the entry bound to the ``pensions`` role, read for its
own organisation, which needs no grant for its own data), under that organisation's verify
grants on the death sources — and the job's stop list is on the console like any job's. Its
summary adds ``daily``: the previous daily job and how many people are on the stop list for the
first time (``new``). Without a new version the task does nothing and says so.

A daily job is the job requested by ``DAILY_ACTOR``; the versions it consulted are pinned on it
(``VerificationJob.sources``), which is all the task needs to remember.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy.orm import Session, sessionmaker

from haihe.core.auth import Principal, Role
from haihe.core.calendar import city_today
from haihe.core.db import transaction
from haihe.core.settings import Settings
from haihe.engine import make_engine, make_store
from haihe.orgs.models import Organisation
from haihe.verification import jobs, repository
from haihe.verification.models import JobStatus
from haihe.verification.rules import get_rule
from haihe.verification.scenarios import Scenario, get_scenario

SCENARIO = "pension_death_stop"
LIST_ROLE = "pensions"  # the pension list the stop runs over (RS.pension_recipients here)
DAILY_ACTOR = "verification-daily"
TASK = "verification.daily_death_stop"


def death_roles(scenario: Scenario) -> list[str]:
    """Return the source roles the scenario's steps read (the registers of death)."""
    roles: list[str] = []
    for step in scenario.steps:
        roles += [r for r in get_rule(step.rule).sources if r not in roles]
    return roles


def run_daily_stop(
    factory: sessionmaker[Session], settings: Settings, *, now: dt.datetime
) -> dict[str, Any]:
    """Run the stop scenario if a death source has a version the last daily run did not see;
    return what happened (``ran`` False with the reason when it did nothing)."""
    scenario = get_scenario(SCENARIO)
    today = city_today(now)
    with transaction(factory) as session:
        entries = repository.bound_entries(session)
        roles = death_roles(scenario)
        listed = entries.get(LIST_ROLE)
        missing = [r for r in (LIST_ROLE, *roles) if r not in entries]
        if listed is None or missing:
            return {"ran": False, "reason": f"source roles not bound: {', '.join(missing)}"}
        unloaded = [r for r in (LIST_ROLE, *roles) if entries[r].current_version is None]
        if unloaded:
            return {"ran": False, "reason": f"nothing loaded for {', '.join(unloaded)}"}
        current = {r: entries[r].current_version for r in roles}
        last = repository.latest_job(session, rule=SCENARIO, requested_by=DAILY_ACTOR)
        seen = {s["role"]: s["version"] for s in last.sources} if last else {}
        if last is not None and all(seen.get(r) == v for r, v in current.items()):
            return {"ran": False, "reason": f"no new death records since job {last.id}"}
        org = session.get(Organisation, listed.provider_id)
        if org is None:
            return {"ran": False, "reason": f"{listed.code} has no provider"}
        actor = Principal(
            kind="system",
            id=0,
            name=DAILY_ACTOR,
            org_id=org.id,
            org_code=org.code,
            roles=frozenset({Role.OPERATOR}),
        )
        upload = _pension_list(settings, scenario, listed.code, listed.current_version)
        try:
            job_id = jobs.create_job(
                session,
                actor=actor,
                settings=settings,
                name=SCENARIO,
                params={"on": today.isoformat()},
                input_path=upload,
                input_name=f"{listed.code} v{listed.current_version} ({today.isoformat()})",
                today=today,
            ).id
        finally:
            upload.unlink(missing_ok=True)
        previous = last.id if last is not None and last.status is JobStatus.SUCCEEDED else None
    status = jobs.run_job(factory, settings, job_id)
    found: dict[str, Any] = {"ran": True, "job": job_id, "status": status.value}
    if status is not JobStatus.SUCCEEDED:
        return found
    with transaction(factory) as session:
        job = repository.job_by_id(session, job_id)
        assert job is not None
        stopped = _on_list(settings, job_id, scenario.primary)
        before = _on_list(settings, previous, scenario.primary) if previous else set()
        daily = {"previous_job": previous, "new": len(stopped - before)}
        job.summary = {**job.summary, "daily": daily}
        found.update(stop=len(stopped), **daily)
    return found


def _pension_list(settings: Settings, scenario: Scenario, code: str, version: int) -> Any:
    """Write the pension list's version as the job's subjects; return the file's path."""
    chosen = settings.model_copy(update={"engine": "duckdb"})
    store = make_store(settings)
    with make_engine(chosen) as engine:
        table = engine.table(store, store.manifest(code, version))
        names = set(table.columns)
        wanted = {"id_number": table.id_number}
        for column, item in (("name", "name"), ("birth_date", "birth_date")):
            if item in names:
                wanted[column] = table[item]
        if "district_code" in names:
            wanted["region"] = table.district_code
        for column in scenario.keep:
            if column in names:
                wanted[column] = table[column]
        rows = engine.execute(table.select(**wanted))
    path = settings.data_dir / "verify" / "uploads" / f"daily-{uuid.uuid4().hex}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows, path)
    return path


def _on_list(settings: Settings, job_id: int, outcome: str) -> set[str]:
    """The ID numbers on a finished job's list ``outcome`` (empty if its result is gone)."""
    path = jobs.job_dir(settings, job_id) / "result.parquet"
    if not path.is_file():
        return set()
    result = pq.read_table(path, columns=["id_number", "outcome"])
    listed = result.filter(pc.equal(result["outcome"], outcome))["id_number"]
    return {str(v) for v in pc.fill_null(listed, pa.scalar("")).to_pylist() if v}
