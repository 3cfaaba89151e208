"""REST routes of verification: /api/v1/verify/…"""

from __future__ import annotations

import json
import shutil
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from haihe.core.db import transaction
from haihe.core.errors import InvalidInput
from haihe.core.web import (
    AppSettings,
    CurrentPrincipal,
    DbSession,
    get_optional_principal,
    get_principal,
)
from haihe.exchange.gateway_api import request_id_of
from haihe.verification import checks, jobs, repository, scoring, service
from haihe.verification.models import VerificationJob
from haihe.verification.rules import registry
from haihe.verification.scenarios import Scenario, scenarios
from haihe.verification.schemas import (
    BindIn,
    BindingOut,
    CheckIn,
    CheckOut,
    JobOut,
    ParameterOut,
    RuleOut,
    ScenarioOut,
    ScoreOut,
)

router = APIRouter(prefix="/api/v1/verify", tags=["verification"])
UPLOAD_SUFFIXES = (".csv", ".txt", ".parquet")


def scenario_out(s: Scenario) -> ScenarioOut:
    return ScenarioOut(
        name=s.name,
        version=s.version,
        title_zh=s.title_zh,
        title_en=s.title_en,
        description_zh=s.description_zh,
        description_en=s.description_en,
        input_columns=["id_number", *s.keep],
        parameters=[
            ParameterOut(name=p.name, type=p.type, default=p.default, help=p.help)
            for p in s.parameters.values()
        ],
        steps={st.name: st.rule for st in s.steps},
        outcomes=s.outcome_names(),
        primary=s.primary,
        derived=[d.name for d in s.derived],
    )


def job_out(job: VerificationJob) -> JobOut:
    return JobOut(
        id=job.id,
        rule=job.rule,
        rule_version=job.rule_version,
        kind=job.kind,
        engine=job.engine,
        score=job.score,
        params=job.params,
        status=job.status.value,
        input_name=job.input_name,
        subjects=job.subjects,
        chunks=job.chunks,
        chunks_done=job.chunks_done,
        sources=job.sources,
        summary=job.summary,
        cancel_requested=job.cancel_requested,
        error=job.error,
        requested_by=job.requested_by,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


@router.get("/rules", response_model=list[RuleOut])
def list_rules(principal: CurrentPrincipal) -> list[RuleOut]:
    """The verification rules of this installation (built-in and the city's own)."""
    return [
        RuleOut(
            name=r.name,
            version=r.version,
            title_zh=r.title_zh,
            title_en=r.title_en,
            combine=r.combine,
            parameters=[
                ParameterOut(
                    name=p.name,
                    type=p.type,
                    default=p.default,
                    help=p.help,
                )
                for p in r.parameters.values()
            ],
            sources={role: list(s.items) for role, s in r.sources.items()},
            reasons=r.reasons,
        )
        for r in sorted(registry().values(), key=lambda r: r.name)
    ]


@router.get("/scenarios", response_model=list[ScenarioOut])
def list_scenarios(principal: CurrentPrincipal) -> list[ScenarioOut]:
    """The verification scenarios of this installation: steps (rules), outcomes, input list."""
    return [scenario_out(s) for s in sorted(scenarios().values(), key=lambda s: s.name)]


@router.get("/bindings", response_model=list[BindingOut])
def list_bindings(session: DbSession, principal: CurrentPrincipal) -> list[BindingOut]:
    """Every source role the rules read, with the catalogue entry bound to it here."""
    return [BindingOut(**b) for b in service.list_bindings(session)]


@router.put("/bindings/{role}", response_model=BindingOut)
def bind(role: str, data: BindIn, session: DbSession, actor: CurrentPrincipal) -> BindingOut:
    """Bind a source role to a catalogue entry (platform admin)."""
    service.bind(session, actor=actor, role=role, code=data.code)
    return next(BindingOut(**b) for b in service.list_bindings(session) if b["role"] == role)


@router.delete("/bindings/{role}", status_code=204)
def unbind(role: str, session: DbSession, actor: CurrentPrincipal) -> None:
    """Remove a source role's binding (platform admin)."""
    service.unbind(session, actor=actor, role=role)


@router.post("/jobs", status_code=202, response_model=JobOut)
def create_job(
    request: Request,
    background: BackgroundTasks,
    session: DbSession,
    settings: AppSettings,
    actor: CurrentPrincipal,
    rule: Annotated[str, Form(description="The rule or scenario to run.")],
    file: Annotated[UploadFile, File(description="Subjects: CSV (UTF-8/GBK) or Parquet.")],
    params: Annotated[str, Form(description="Its parameters as a JSON object.")] = "{}",
    engine: Annotated[str, Form(description="duckdb (default) or spark.")] = "duckdb",
) -> JobOut:
    """Queue a batch verification (a rule, or a scenario and its lists) of the uploaded
    subjects; poll the job, then download."""
    try:
        given = json.loads(params)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"params is not JSON: {exc}") from None
    if not isinstance(given, dict):
        raise InvalidInput('params is a JSON object, e.g. {"on": "2024-05-01"}')
    name = file.filename or "subjects.csv"
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ".csv"
    if suffix not in UPLOAD_SUFFIXES:
        raise InvalidInput(f"upload a .csv or .parquet file, not {name!r}")
    upload = settings.data_dir / "verify" / "uploads" / f"{uuid.uuid4().hex}{suffix}"
    upload.parent.mkdir(parents=True, exist_ok=True)
    with upload.open("wb") as fh:
        shutil.copyfileobj(file.file, fh)
    try:
        job = jobs.create_job(
            session,
            actor=actor,
            settings=settings,
            name=rule,
            params=given,
            input_path=upload,
            input_name=name,
            engine=engine,
        )
    finally:
        upload.unlink(missing_ok=True)
    session.commit()  # the background run starts after the response; it must see the job
    background.add_task(jobs.run_job, request.app.state.session_factory, settings, job.id)
    return job_out(job)


@router.get("/jobs", response_model=list[JobOut])
def list_jobs(
    session: DbSession, actor: CurrentPrincipal, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[JobOut]:
    """The jobs of the caller's organisation (all of them for the platform admin), newest first."""
    if actor.is_platform_admin:
        return [job_out(j) for j in repository.list_jobs(session, org_id=None, limit=limit)]
    if actor.org_id is None:
        return []
    return [job_out(j) for j in repository.list_jobs(session, org_id=actor.org_id, limit=limit)]


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: int, session: DbSession, actor: CurrentPrincipal) -> JobOut:
    """One job: status, progress (chunks done of chunks) and, when done, its summary."""
    return job_out(jobs.get_job(session, actor=actor, job_id=job_id))


@router.post("/jobs/{job_id}/cancel", response_model=JobOut)
def cancel_job(job_id: int, session: DbSession, actor: CurrentPrincipal) -> JobOut:
    """Stop a queued or running job after its current chunk."""
    return job_out(jobs.cancel_job(session, actor=actor, job_id=job_id))


@router.post("/jobs/{job_id}/score", response_model=ScoreOut)
def score_job(
    job_id: int,
    session: DbSession,
    settings: AppSettings,
    actor: CurrentPrincipal,
    truth: Annotated[
        UploadFile,
        File(
            description="The ground truth: CSV (UTF-8) or Parquet with the key and yes-column "
            "the scenario's [score] names (e.g. pension_no and alive)."
        ),
    ],
) -> ScoreOut:
    """Score a finished scenario job's primary list against a ground truth: tp, fp, fn,
    precision and recall, kept on the job (its report shows them).

    For whoever may see the job and could run it now (the verify grants of every step, as
    for `POST /jobs`). 409 for a rule job or one that has not succeeded; 422 for a file that
    cannot be read or lacks the scenario's key or yes-column.
    """
    found = scoring.score_upload(
        session,
        actor=actor,
        settings=settings,
        job_id=job_id,
        upload=truth.file,
        filename=truth.filename or "truth.csv",
    )
    job = jobs.get_job(session, actor=actor, job_id=job_id)
    return ScoreOut(job_id=job.id, scenario=job.rule, **found)


@router.get("/jobs/{job_id}/download", response_class=FileResponse)
def download(
    job_id: int,
    session: DbSession,
    settings: AppSettings,
    actor: CurrentPrincipal,
    format: Literal["csv", "parquet"] = "csv",
) -> Any:
    """The finished job's answers, one row per input subject in input order."""
    job = jobs.get_job(session, actor=actor, job_id=job_id)
    result = jobs.result_path(settings, job)
    if format == "parquet":
        return FileResponse(result, filename=f"verify-{job_id}.parquet")
    target = result.with_name("result.csv")
    if not target.is_file():
        jobs.write_output(result, target)
    return FileResponse(target, media_type="text/csv", filename=f"verify-{job_id}.csv")


@router.post(
    "/{rule}",
    response_model=None,
    responses={200: {"model": CheckOut, "description": "One answer per subject, in order."}},
)
async def check(rule: str, data: CheckIn, request: Request) -> Response:
    """Answer a rule's question about one or a few subjects, under the caller's verify grants.

    Every check is recorded in the audit ledger (a refused one too), with the request id
    (`X-Request-ID`).
    """
    call = {
        "rule_name": rule,
        "subjects": data.subjects,
        "params": data.params,
        "request_id": request_id_of(request),
    }
    if request.app.state.engine.dialect.name == "sqlite":
        # in-process and CPU-bound (about a millisecond): a worker thread would only add GIL
        # contention and queue writers behind each other, as for the exchange gateway
        answer = _serve_check(request, call)
    else:
        answer = await run_in_threadpool(_serve_check, request, call)
    return Response(answer.model_dump_json(), media_type="application/json")


def _serve_check(request: Request, call: dict[str, Any]) -> CheckOut:
    """Authenticate and answer one check in its own transaction, committed before the answer.

    The hot path of verification, so it skips the generic dependencies (one hop to a worker
    thread instead of one per dependency, one session for the caller and the check); the
    transaction commits — or rolls back and runs its rollback hooks, which audit a refusal —
    before the response is sent.
    """
    with transaction(request.app.state.session_factory) as session:
        principal = get_principal(get_optional_principal(request, session))
        return checks.check_subjects(
            session, actor=principal, settings=request.app.state.settings, **call
        )
