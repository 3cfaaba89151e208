"""Console pages of verification — 数据核验: rules and scenarios, the counter's single check,
batch jobs (upload, progress, cancel, download) and each job's report with its lists and its
score against a ground truth uploaded on the page.

The pages serve the roles the home page shows verification to (platform admin, org admins,
operators, officers); what each may do beyond looking is the service's to decide, as over REST:
a check, a job or its score needs the organisation's verify grants, a job is seen by its
organisation and the platform admin.
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.background import BackgroundTask
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from haihe.core import i18n
from haihe.core.auth import Principal, Role
from haihe.core.calendar import CHINA_TIME
from haihe.core.errors import Forbidden, HaiheError, InvalidInput
from haihe.core.templating import RenderedError, render
from haihe.core.web import AppSettings, CurrentPrincipal, DbSession
from haihe.exchange.gateway_api import request_id_of
from haihe.verification import checks, jobs, reports, repository, scoring, service
from haihe.verification.api import UPLOAD_SUFFIXES
from haihe.verification.models import JobStatus, VerificationJob
from haihe.verification.rules import Rule, get_rule, registry
from haihe.verification.scenarios import Scenario, scenarios
from haihe.verification.schemas import CheckOut, SubjectIn
from haihe.verification.subjects import OPTIONAL

router = APIRouter(include_in_schema=False)

ROLES = (Role.PLATFORM_ADMIN, Role.ORG_ADMIN, Role.OPERATOR, Role.OFFICER)
PARAM = "param_"  # form fields of a rule's or scenario's parameters: param_on, param_since…
FINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


async def form_data(request: Request) -> FormData:
    """The posted form, whatever its fields (a rule's parameters vary by rule)."""
    return await request.form()


Form = Annotated[FormData, Depends(form_data)]


def _staff(principal: Principal) -> Principal:
    """The caller, if verification is part of their work; Forbidden otherwise."""
    if not principal.has(*ROLES):
        raise Forbidden("verification is for the platform admin and departments' staff")
    return principal


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return exc.message if isinstance(exc, HaiheError) else str(exc)


def _params(form: FormData) -> dict[str, str]:
    """The parameters given in a form (empty fields take the default)."""
    return {
        key[len(PARAM) :]: value.strip()
        for key, value in form.multi_items()
        if key.startswith(PARAM) and isinstance(value, str) and value.strip()
    }


def _text(form: FormData, key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""


# ---------------------------------------------------------------- rules and scenarios


@router.get("/verification", response_class=HTMLResponse)
def overview(request: Request, session: DbSession, principal: CurrentPrincipal) -> Response:
    """The scenarios and rules of this installation, their parameters and bound sources."""
    _staff(principal)
    bound = {b["role"]: b for b in service.list_bindings(session)}
    context = {
        "tab": "overview",
        "scenarios": sorted(scenarios().values(), key=lambda s: s.name),
        "rules": sorted(registry().values(), key=lambda r: r.name),
        "bound": bound,
    }
    return render(request, "verification/overview.html", context)


# ---------------------------------------------------------------- the single check


@router.get("/verification/check", response_class=HTMLResponse)
def check_form(
    request: Request,
    principal: CurrentPrincipal,
    rule: Annotated[str, Query(max_length=64)] = "alive",
) -> Response:
    """The counter clerk's form: one person, one rule; the answer comes on the same page."""
    _staff(principal)
    return _check_page(request, _rule_or_first(rule), values={})


@router.post("/verification/check", response_class=HTMLResponse)
def check(
    request: Request, session: DbSession, principal: CurrentPrincipal, form: Form
) -> Response:
    """Answer the form's question: verdict, reasons and the versions consulted — never rows."""
    _staff(principal)
    rule = _rule_or_first(_text(form, "rule"))
    values = {k: _text(form, k) for k in ("id_number", *OPTIONAL)}
    params = _params(form)
    try:
        subject = SubjectIn.model_validate(
            {k: v for k, v in values.items() if v or k == "id_number"}
        )
        answer = checks.check_subjects(
            session,
            actor=principal,
            settings=request.app.state.settings,
            rule_name=rule.name,
            subjects=[subject],
            params=params,
            request_id=request_id_of(request),
        )
    except (ValidationError, HaiheError) as exc:
        page = _check_page(request, rule, values=values | params, error=_reason(exc))
        raise RenderedError(page) from exc
    # the form is cleared for the next person: the answer shows this one's ID masked
    return _check_page(request, rule, values=params, answer=answer)


def _rule_or_first(name: str) -> Rule:
    known = registry()
    return known[name] if name in known else get_rule(sorted(known)[0])


def _check_page(
    request: Request,
    rule: Rule,
    *,
    values: Mapping[str, str],
    answer: CheckOut | None = None,
    error: str | None = None,
) -> HTMLResponse:
    context = {
        "tab": "check",
        "rule": rule,
        "rules": sorted(registry().values(), key=lambda r: r.name),
        "values": values,
        "answer": answer,
        "error": error,
        "label": labeller(i18n.request_language(request), {"": rule}),
    }
    status = 200 if error is None else 403 if "grant" in error else 422
    return render(request, "verification/check.html", context, status=status)


# ---------------------------------------------------------------- batch jobs


@router.get("/verification/jobs", response_class=HTMLResponse)
def job_list(request: Request, session: DbSession, principal: CurrentPrincipal) -> Response:
    """The organisation's jobs (every job for the platform admin), newest first."""
    _staff(principal)
    if principal.is_platform_admin:
        found = repository.list_jobs(session, org_id=None, limit=200)
    elif principal.org_id is not None:
        found = repository.list_jobs(session, org_id=principal.org_id, limit=200)
    else:
        found = []
    context = {"tab": "jobs", "jobs": found, "titles": _titles(), "when": local_time}
    return render(request, "verification/jobs.html", context)


@router.get("/verification/jobs/new", response_class=HTMLResponse)
def job_form(
    request: Request,
    principal: CurrentPrincipal,
    name: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """Run a batch job: upload a subject file, choose a rule or scenario and the engine."""
    _staff(principal)
    return _job_form_page(request, name, values={})


@router.post("/verification/jobs", response_class=HTMLResponse)
def create_job(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    principal: CurrentPrincipal,
    form: Form,
) -> Response:
    """Queue the job and run it after the response; go to its page (progress, then report)."""
    _staff(principal)
    name, engine = _text(form, "name"), _text(form, "engine") or "duckdb"
    params = _params(form)
    upload = form.get("file")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise InvalidInput("choose a subject file (CSV or Parquet) to upload")
        job = _queue(session, settings, principal, name, params, engine, upload)
    except HaiheError as exc:
        page = _job_form_page(request, name, values=params | {"engine": engine}, error=_reason(exc))
        raise RenderedError(page) from exc
    session.commit()  # the background run starts after the response; it must see the job
    run = BackgroundTask(jobs.run_job, request.app.state.session_factory, settings, job.id)
    return RedirectResponse(f"/verification/jobs/{job.id}", status_code=303, background=run)


def _queue(
    session: DbSession,
    settings: AppSettings,
    principal: Principal,
    name: str,
    params: dict[str, str],
    engine: str,
    upload: UploadFile,
) -> VerificationJob:
    filename = upload.filename or "subjects.csv"
    suffix = Path(filename).suffix.lower() or ".csv"
    if suffix not in UPLOAD_SUFFIXES:
        raise InvalidInput(f"upload a .csv or .parquet file, not {filename!r}")
    path = settings.data_dir / "verify" / "uploads" / f"{uuid.uuid4().hex}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        shutil.copyfileobj(upload.file, fh)
    try:
        return jobs.create_job(
            session,
            actor=principal,
            settings=settings,
            name=name,
            params=params,
            input_path=path,
            input_name=filename,
            engine=engine,
        )
    finally:
        path.unlink(missing_ok=True)


def _job_form_page(
    request: Request, name: str, *, values: Mapping[str, str], error: str | None = None
) -> HTMLResponse:
    found = scenarios()
    chosen: Scenario | Rule | None = found.get(name) or registry().get(name)
    context = {
        "tab": "new",
        "scenarios": sorted(found.values(), key=lambda s: s.name),
        "rules": sorted(registry().values(), key=lambda r: r.name),
        "chosen": chosen,
        "name": name if chosen else "",
        "engines": jobs.ENGINES,
        "values": values,
        "error": error,
    }
    return render(
        request, "verification/job_form.html", context, status=422 if error is not None else 200
    )


@router.get("/verification/jobs/{job_id}", response_class=HTMLResponse)
def job_page(
    job_id: int,
    request: Request,
    session: DbSession,
    settings: AppSettings,
    principal: CurrentPrincipal,
    list_name: Annotated[str, Query(alias="list", max_length=64)] = "",
    page: Annotated[int, Query(ge=1)] = 1,
) -> Response:
    """A job: progress while it runs; then its summary, score and lists (the report)."""
    _staff(principal)
    job = jobs.get_job(session, actor=principal, job_id=job_id)
    return _job_page(request, settings, job, list_name=list_name, page=page)


@router.post("/verification/jobs/{job_id}/score", response_class=HTMLResponse)
def score_job(
    job_id: int,
    request: Request,
    session: DbSession,
    settings: AppSettings,
    principal: CurrentPrincipal,
    form: Form,
) -> Response:
    """Score the job against the uploaded ground truth; back to its report, which shows the
    precision and recall (a bad file or a refusal: the page again, saying why)."""
    _staff(principal)
    job = jobs.get_job(session, actor=principal, job_id=job_id)
    upload = form.get("truth")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise InvalidInput("choose a ground-truth file (CSV or Parquet) to upload")
        scoring.score_upload(
            session,
            actor=principal,
            settings=settings,
            job_id=job.id,
            upload=upload.file,
            filename=upload.filename,
        )
    except HaiheError as exc:
        page = _job_page(request, settings, job, score_error=_reason(exc), status=exc.status)
        raise RenderedError(page) from exc
    return RedirectResponse(f"/verification/jobs/{job.id}#score", status_code=303)


def _job_page(
    request: Request,
    settings: AppSettings,
    job: VerificationJob,
    *,
    list_name: str = "",
    page: int = 1,
    score_error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    scenario, _ = jobs.resolve(job.rule)
    names = reports.list_names(job, scenario)
    shown = None
    if job.status is JobStatus.SUCCEEDED:
        chosen = list_name if list_name in names else names[0]
        shown = reports.list_page(settings, job, scenario, name=chosen, page=page)
    is_scenario = job.kind == jobs.SCENARIO
    lang = i18n.request_language(request)
    context = {
        "tab": "jobs",
        "job": job,
        "scenario": scenario,
        "is_scenario": is_scenario,
        "label": labeller(lang, _steps_of(scenario, is_scenario)),
        "lists": names,
        "shown": shown,
        "final": job.status in FINAL,
        "score_error": score_error,
        "titles": _titles(),
        "when": local_time,
    }
    return render(request, "verification/job.html", context, status=status)


@router.get("/verification/jobs/{job_id}/progress", response_class=HTMLResponse)
def job_progress(
    job_id: int, request: Request, session: DbSession, principal: CurrentPrincipal
) -> Response:
    """The progress bar (polled by htmx); once the job is over, the page reloads whole."""
    _staff(principal)
    job = jobs.get_job(session, actor=principal, job_id=job_id)
    if request.headers.get("hx-request") != "true":
        raise StarletteHTTPException(status_code=404)
    headers = {"HX-Refresh": "true"} if job.status in FINAL else None
    context = {"job": job, "final": job.status in FINAL}
    return render(request, "verification/_progress.html", context, headers=headers)


@router.post("/verification/jobs/{job_id}/cancel")
def cancel_job(job_id: int, session: DbSession, principal: CurrentPrincipal) -> RedirectResponse:
    """Ask the job to stop after its current chunk."""
    _staff(principal)
    jobs.cancel_job(session, actor=principal, job_id=job_id)
    return RedirectResponse(f"/verification/jobs/{job_id}", status_code=303)


def labeller(lang: str, steps: Mapping[str, Rule]) -> Callable[[str], str]:
    """Return ``label(code)``: a reason code's words in ``lang`` — the rule file's reasons (a
    scenario's codes are ``step.code``), else this domain's messages, else the code itself.
    ``steps``: step name → its rule (a rule alone or a single check: ``{"": rule}``)."""
    messages = i18n.catalogues().get(lang, {})

    def label(code: str) -> str:
        step, _, bare = code.rpartition(".")
        rule = steps.get(step)
        text = rule.reasons.get(bare, {}).get(lang) if rule is not None else None
        return text or messages.get(f"verification.reason.{bare}") or bare

    return label


def _steps_of(scenario: Scenario, is_scenario: bool) -> dict[str, Rule]:
    if not is_scenario:
        return {"": get_rule(scenario.steps[0].rule)}
    return {s.name: get_rule(s.rule) for s in scenario.steps}


def _titles() -> dict[str, dict[str, str]]:
    """Every rule's and scenario's titles by name (zh, en)."""
    out = {r.name: {"zh": r.title_zh, "en": r.title_en} for r in registry().values()}
    out.update({s.name: {"zh": s.title_zh, "en": s.title_en} for s in scenarios().values()})
    return out


def local_time(when: dt.datetime | None) -> str:
    """A time as the city reads it (Asia/Shanghai), to the minute."""
    return when.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M") if when else "—"
