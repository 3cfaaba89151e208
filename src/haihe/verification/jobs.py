"""Batch verification jobs — 批量核验: a subject file checked chunk by chunk on the engine.

``create_job`` checks the rule, parameters and verify grants at once (so a refusal is the
caller's 403, not a failed job), normalises the subjects into ``DATA_DIR/verify/<id>/subjects
.parquet`` (input order, invalid IDs kept) and pins the source versions. ``run_job`` works
through the chunks: each is one Ibis expression (subjects semi-joined to every source on the
17-digit ID body as BIGINT; DuckDB now, PySpark later) whose answers go to ``chunk_NNNNN
.parquet`` by atomic rename, then the chunk is audited and counted in the job row in one
transaction. A crash or kill loses at most the chunk in progress: a rerun skips chunks already
counted, audits (without recomputing) a chunk whose file exists but was not yet counted, and
computes the rest. Cancel is a flag read between chunks. The result, one row per input subject
in input order, is assembled when the last chunk is done.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy.orm import Session, sessionmaker

from haihe.core.auth import Principal
from haihe.core.db import transaction, utcnow
from haihe.core.errors import Conflict, HaiheError, NotFound, StorageError
from haihe.core.identity import compose_ids_np
from haihe.core.masking import pseudonymise
from haihe.core.settings import Settings
from haihe.engine import Engine, make_engine, make_store
from haihe.verification import repository, service
from haihe.verification.models import JobStatus, VerificationJob
from haihe.verification.rules import Check, get_rule
from haihe.verification.service import UNKNOWN, Plan
from haihe.verification.subjects import ID_COLUMN, normalised, problem_reason, read_subjects

if TYPE_CHECKING:
    import ibis.expr.types as ir

ACTION = "verification.job"
CHUNK_ROWS = 100_000
Progress = Callable[[int, int], None]  # (chunks done, chunks)


def job_dir(settings: Settings, job_id: int) -> Path:
    return settings.data_dir / "verify" / f"{job_id:08d}"


def may_see(actor: Principal, job: VerificationJob) -> bool:
    return actor.is_platform_admin or (actor.org_id is not None and actor.org_id == job.org_id)


def get_job(session: Session, *, actor: Principal, job_id: int) -> VerificationJob:
    """Job ``job_id`` if the actor may see it (its organisation's, or any for the admin)."""
    job = repository.job_by_id(session, job_id)
    if job is None or not may_see(actor, job):
        raise NotFound(f"verification job {job_id} does not exist")
    return job


def create_job(
    session: Session,
    *,
    actor: Principal,
    settings: Settings,
    rule_name: str,
    params: Mapping[str, Any],
    input_path: Path,
    input_name: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    today: dt.date | None = None,
) -> VerificationJob:
    """Queue a batch job over the subjects in ``input_path``; return it (flushed).

    Errors as ``checks.check_subjects`` for the rule, sources and grants; InvalidInput for a
    subject file that cannot be read, lacks ``id_number`` or has no rows.
    """
    rule = get_rule(rule_name)
    plan = service.prepare(
        session, actor=actor, rule=rule, params=params, action=ACTION, today=today
    )
    table = read_subjects(input_path)
    ids = normalised(table.column(ID_COLUMN), today=today)
    job = VerificationJob(
        rule=rule.name,
        rule_version=rule.version,
        params={k: v.isoformat() if isinstance(v, dt.date) else v for k, v in plan.params.items()},
        org_id=actor.org_id,
        requested_by=actor.name,
        actor=service.actor_record(actor),
        status=JobStatus.QUEUED,
        input_name=input_name or input_path.name,
        subjects=table.num_rows,
        chunks=math.ceil(table.num_rows / chunk_rows),
        chunks_done=0,
        sources=plan.consulted(),
        summary={"chunk_rows": chunk_rows},
    )
    session.add(job)
    session.flush()
    folder = job_dir(settings, job.id)
    folder.mkdir(parents=True, exist_ok=True)
    subjects = pa.table(
        {
            "ref": ids.column("ref"),
            "id_number": table.column(ID_COLUMN),
            "body": ids.column("body"),
            "problem": ids.column("problem"),
        }
    )
    _write_atomic(subjects, folder / "subjects.parquet")
    return job


def cancel_job(session: Session, *, actor: Principal, job_id: int) -> VerificationJob:
    """Ask a queued or running job to stop after its current chunk."""
    job = get_job(session, actor=actor, job_id=job_id)
    if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        raise Conflict(f"job {job_id} is {job.status.value}; only unfinished jobs are cancelled")
    job.cancel_requested = True
    if job.status is JobStatus.QUEUED:
        job.status, job.finished_at = JobStatus.CANCELLED, utcnow()
    session.flush()
    return job


def run_job(
    factory: sessionmaker[Session],
    settings: Settings,
    job_id: int,
    *,
    progress: Progress | None = None,
) -> JobStatus:
    """Run (or resume) a job to its end; return its final status. Commits per chunk."""
    with transaction(factory) as session:
        job = repository.job_by_id(session, job_id)
        if job is None:
            raise NotFound(f"verification job {job_id} does not exist")
        if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
            return job.status
        job.status, job.started_at = JobStatus.RUNNING, job.started_at or utcnow()
        actor = service.actor_of(job.actor)
        try:
            plan = _plan(session, job, actor)
        except HaiheError as exc:
            job.status, job.error, job.finished_at = JobStatus.FAILED, exc.message, utcnow()
            return job.status
        chunks, done = job.chunks, job.chunks_done
        chunk_rows = int(job.summary.get("chunk_rows", CHUNK_ROWS))
    folder = job_dir(settings, job_id)
    try:
        with make_engine(settings) as engine:
            for index in range(done, chunks):
                if _cancelled(factory, job_id):
                    return JobStatus.CANCELLED
                path = folder / f"chunk_{index:05d}.parquet"
                if not path.is_file():
                    answers = _chunk(engine, settings, plan, folder, index, chunk_rows)
                    _write_atomic(answers, path)
                with transaction(factory) as session:
                    _count_chunk(session, settings, plan, actor, job_id, pq.read_table(path))
                if progress is not None:
                    progress(index + 1, chunks)
        with transaction(factory) as session:
            job = repository.job_by_id(session, job_id)
            assert job is not None
            job.summary = {**job.summary, **_assemble(folder, chunks)}
            job.status, job.finished_at = JobStatus.SUCCEEDED, utcnow()
    except HaiheError as exc:
        with transaction(factory) as session:
            job = repository.job_by_id(session, job_id)
            assert job is not None
            job.status, job.error, job.finished_at = JobStatus.FAILED, exc.message, utcnow()
        return JobStatus.FAILED
    return JobStatus.SUCCEEDED


def result_path(settings: Settings, job: VerificationJob) -> Path:
    """The finished job's result (Parquet); Conflict until it has one."""
    path = job_dir(settings, job.id) / "result.parquet"
    if job.status is not JobStatus.SUCCEEDED or not path.is_file():
        raise Conflict(f"job {job.id} is {job.status.value}; its result comes when it succeeds")
    return path


def write_output(result: Path, output: Path) -> Path:
    """Copy a result to ``output``: Parquet, or CSV (UTF-8 with BOM) for any other suffix."""
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix.lower() == ".parquet":
        shutil.copyfile(result, output)
        return output
    with output.open("wb") as fh:
        fh.write("\ufeff".encode())
        pacsv.write_csv(pq.read_table(result), fh)
    return output


# ---------------------------------------------------------------- the work


def _plan(session: Session, job: VerificationJob, actor: Principal) -> Plan:
    """The job's plan, with grants checked again and the versions pinned at creation."""
    rule = get_rule(job.rule)
    if rule.version != job.rule_version:
        raise Conflict(f"rule {rule.name} is v{rule.version} now; the job was v{job.rule_version}")
    plan = service.prepare(session, actor=actor, rule=rule, params=job.params, action=ACTION)
    pinned = {s["role"]: s["version"] for s in job.sources}
    for role, source in plan.sources.items():
        plan.sources[role] = service.BoundSource(
            **{**source.__dict__, "version": pinned.get(role, source.version)}
        )
    return plan


def _cancelled(factory: sessionmaker[Session], job_id: int) -> bool:
    with transaction(factory) as session:
        job = repository.job_by_id(session, job_id)
        assert job is not None
        if job.cancel_requested:
            job.status, job.finished_at = JobStatus.CANCELLED, utcnow()
            return True
    return False


def _chunk(
    engine: Engine, settings: Settings, plan: Plan, folder: Path, index: int, chunk_rows: int
) -> pa.Table:
    """Return the answers of one chunk: ref, id_number, verdict, reasons, confidence."""
    lo, hi = index * chunk_rows, (index + 1) * chunk_rows
    subjects = pq.read_table(
        folder / "subjects.parquet", filters=[("ref", ">=", lo), ("ref", "<", hi)]
    )
    flags: dict[str, list[bool]] = {}
    valid = subjects.filter(pc.greater_equal(subjects["body"], 0))
    exists = [c for c in plan.checks if c.kind == "exists"]
    if exists and valid.num_rows:
        people = engine.read_parquet([folder / "subjects.parquet"])
        people = people.filter((people.ref >= lo) & (people.ref < hi) & (people.body >= 0))
        store = make_store(settings)
        expr = people.select(
            people.ref,
            **{c.name: people.body.isin(_bodies(engine, store, plan, c)) for c in exists},
        ).order_by("ref")
        found = engine.execute(expr)
        flags = {c.name: found.column(c.name).to_pylist() for c in exists}
    verdicts, reasons, confidence = [], [], []
    position = 0
    for body, problem in zip(
        subjects["body"].to_pylist(), subjects["problem"].to_pylist(), strict=True
    ):
        if problem:
            verdicts.append(UNKNOWN)
            reasons.append(problem_reason(problem))
            confidence.append(0.0)
            continue
        held: dict[str, bool | None] = {c.name: bool(flags[c.name][position]) for c in exists}
        held.update(service.age_checks(plan, body))
        position += 1
        verdict, why = service.decide(plan.rule, {c.name: held[c.name] for c in plan.checks})
        verdicts.append(verdict)
        reasons.append(";".join(why))
        confidence.append(1.0)
    return pa.table(
        {
            "ref": subjects["ref"],
            "id_number": subjects["id_number"],
            "body": subjects["body"],
            "verdict": pa.array(verdicts, pa.string()),
            "reasons": pa.array(reasons, pa.string()),
            "confidence": pa.array(confidence, pa.float64()),
        }
    )


def _bodies(engine: Engine, store: Any, plan: Plan, check: Check) -> ir.Column:
    """The 17-digit ID bodies (BIGINT) of a source's records meeting the check's conditions."""
    import ibis  # a second to import: the app and single checks should not pay for it

    source = plan.sources[check.source or ""]
    table = engine.table(store, store.manifest(source.code, source.version))
    ident = table[source.id_item]
    table = table.filter(ident.notnull() & (ident.length() == 18))
    for cond in check.where:
        column = table[cond.item]
        value = cond.resolved(plan.params)
        if source.types[cond.item].startswith("timestamp") and isinstance(value, dt.date):
            column = column.date()
        if cond.op == "in":
            table = table.filter(column.isin(list(value)))
        else:
            table = table.filter(_compare(column, cond.op, ibis.literal(value)))
    return table[source.id_item].substr(0, 17).cast("int64")


def _compare(column: Any, op: str, value: Any) -> Any:
    return {
        "=": lambda: column == value,
        "!=": lambda: column != value,
        "<": lambda: column < value,
        "<=": lambda: column <= value,
        ">": lambda: column > value,
        ">=": lambda: column >= value,
    }[op]()


def _count_chunk(
    session: Session,
    settings: Settings,
    plan: Plan,
    actor: Principal,
    job_id: int,
    answers: pa.Table,
) -> None:
    """Audit a finished chunk and count it in the job row, in the caller's transaction."""
    key = settings.secret_key_bytes()
    valid = answers.filter(pc.greater_equal(answers["body"], 0))
    numbers: Any = compose_ids_np(valid["body"].to_numpy()) if valid.num_rows else []
    counts = Counter(answers["verdict"].to_pylist())
    service.record_checks(
        session,
        actor=actor,
        plan=plan,
        action=ACTION,
        subjects=[pseudonymise(key, str(n)) for n in numbers],
        verdicts=counts,
        extra={"job": job_id},
    )
    job = repository.job_by_id(session, job_id)
    assert job is not None
    job.chunks_done += 1


def _assemble(folder: Path, chunks: int) -> dict[str, Any]:
    """Write ``result.parquet`` from the chunks, in input order; return the summary."""
    parts = [pq.read_table(folder / f"chunk_{i:05d}.parquet") for i in range(chunks)]
    result = pa.concat_tables(parts).sort_by("ref") if parts else pa.table({})
    out = result.select(["ref", "id_number", "verdict", "reasons", "confidence"])
    out = out.set_column(0, "row", pc.add(out["ref"], 1))
    _write_atomic(out, folder / "result.parquet")
    verdicts = Counter(out["verdict"].to_pylist())
    reasons: Counter[str] = Counter()
    for text in out["reasons"].to_pylist():
        reasons.update(r for r in text.split(";") if r)
    return {
        "subjects": out.num_rows,
        "verdicts": {v: verdicts.get(v, 0) for v in service.VERDICTS},
        "reasons": dict(reasons.most_common()),
    }


def _write_atomic(table: pa.Table, path: Path) -> None:
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table, temp)
        with temp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except (OSError, pa.ArrowException) as exc:
        temp.unlink(missing_ok=True)
        raise StorageError(f"cannot write {path.name}: {exc}") from None
