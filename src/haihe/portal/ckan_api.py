"""The CKAN Action API — /api/action/{name} and /api/3/action/{name}, GET and POST.

Answers in CKAN's envelope (``help``, ``success``, ``result`` or ``error`` with ``__type``) and
with CKAN's HTTP statuses, never in Haihe's own error shape: errors are caught here, inside the
route, before the app's handlers could see them. Callers of 有条件开放 datasets send their
portal API key as the ``Authorization`` header (or ``X-CKAN-API-Key``), as CKAN's clients do.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from haihe.core.auth import Principal
from haihe.core.db import transaction, utcnow
from haihe.core.errors import (
    BadRequest,
    Forbidden,
    HaiheError,
    InvalidInput,
    NotAuthenticated,
    NotFound,
)
from haihe.core.settings import Settings
from haihe.portal import downloads, service
from haihe.portal.actions import ACTIONS, Context
from haihe.portal.datastore import FieldErrors
from haihe.portal.materialise import today_in_city
from haihe.portal.search import SearchQueryError

log = logging.getLogger("haihe.portal")
router = APIRouter(include_in_schema=False)


def _finish(status: int, body: Any) -> Response:
    return JSONResponse(body, status_code=status, media_type="application/json;charset=utf-8")


def _bad_request(message: str) -> Response:
    return _finish(400, f"Bad request - {message}")


def caller(request: Request, session: Session) -> Principal | None:
    """The caller of a CKAN request: a portal API key (Authorization or X-CKAN-API-Key), a
    Haihe bearer token, a console session, or nobody."""
    key = request.headers.get("x-ckan-api-key") or request.headers.get("authorization")
    if key and not key.lower().startswith("bearer "):
        return service.principal_for_key(session, key, today=today_in_city(utcnow()))
    principal: Principal | None = request.app.state.authenticator(request, session)
    return principal


async def _params(request: Request) -> dict[str, Any]:
    """The call's parameters: the query string of a GET, the JSON (or form) body of a POST."""
    if request.method == "GET":
        out: dict[str, Any] = {}
        for key in request.query_params:
            values = request.query_params.getlist(key)
            out[key] = values[0] if len(values) == 1 else values
        return out
    ctype = request.headers.get("content-type", "")
    if "form" in ctype:
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}
    body = await request.body()
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"JSON Error: Error decoding JSON data. Error: {exc!r}") from None
    if not isinstance(data, dict):
        raise ValueError(
            f"Bad request data: Request data JSON decoded to {data!r} but it needs to be a "
            "dictionary."
        )
    return data


@router.api_route("/api/action/{name}", methods=["GET", "POST"])
@router.api_route("/api/{ver}/action/{name}", methods=["GET", "POST"])
async def action(request: Request, name: str, ver: int = 3) -> Response:
    """Run a CKAN action and answer in CKAN's envelope."""
    if ver != 3:
        return _bad_request(f"API version {ver} is not served; use /api/3/action/")
    if name not in ACTIONS:
        return _bad_request(f"Action name not known: {name}")
    try:
        params = await _params(request)
    except ValueError as exc:
        return _bad_request(str(exc))
    params.pop("callback", None)
    # The body is read here, on the event loop; the action runs in a worker thread, in one
    # transaction that it opens and closes itself (SQLite's write lock is per thread).
    status, envelope = await run_in_threadpool(run_action, request, name, params)
    return _finish(status, envelope)


def run_action(request: Request, name: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Return CKAN's HTTP status and envelope for one call, committing what it counted."""
    base_url = str(request.base_url).rstrip("/")
    envelope: dict[str, Any] = {"help": f"{base_url}/api/3/action/help_show?name={name}"}
    settings: Settings = request.app.state.settings
    try:
        with transaction(request.app.state.session_factory) as session:
            actor = caller(request, session)
            ctx = Context(session=session, settings=settings, actor=actor, base_url=base_url)
            result = ACTIONS[name](ctx, params)
    except HaiheError as exc:
        status, error = ckan_error(exc)
        envelope.update(success=False, error=error)
        return status, envelope
    except Exception:
        log.exception("CKAN action %s failed", name)
        envelope.update(
            success=False,
            error={"__type": "Internal Server Error", "message": "Internal Server Error"},
        )
        return 500, envelope
    envelope.update(success=True, result=result)
    return 200, envelope


@router.get("/portal/dataset/{name}/download.{ext}")
def download(request: Request, name: str, ext: str) -> Response:
    """A dataset's data as CSV, JSON, Parquet or xlsx, streamed (an API key for 有条件开放)."""
    settings: Settings = request.app.state.settings
    with transaction(request.app.state.session_factory) as session:
        ds = service.get_dataset(session, ref=name)
        service.require_data_access(session, caller(request, session), ds)
        body = downloads.stream(settings, ds, ext)
        service.count_use(session, ds=ds, what="downloads")
        filename = f"{ds.name}.{ext}"
    return StreamingResponse(
        body,
        media_type=downloads.MEDIA[ext],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/api/3")
@router.get("/api/action")
def api_version() -> dict[str, int]:
    """The Action API's version, as CKAN answers at /api/3."""
    return {"version": 3}


def ckan_error(exc: HaiheError) -> tuple[int, dict[str, Any]]:
    """CKAN's HTTP status and ``error`` object for a Haihe error."""
    if isinstance(exc, NotFound):
        return 404, {"__type": "Not Found Error", "message": f"Not found: {exc.message}"}
    if isinstance(exc, Forbidden | NotAuthenticated):
        return 403, {"__type": "Authorization Error", "message": f"Access denied: {exc.message}"}
    if isinstance(exc, FieldErrors):
        return 409, {"__type": "Validation Error", **exc.errors}
    if isinstance(exc, SearchQueryError):
        return 400, {
            "__type": "Search Query Error",
            "message": f"Search Query is invalid: {(exc.message,)!r}",
        }
    if isinstance(exc, InvalidInput | BadRequest):
        return 409, {"__type": "Validation Error", "message": [exc.message]}
    if exc.status == 409:
        return 409, {"__type": "Validation Error", "message": [exc.message]}
    return 500, {"__type": "Internal Server Error", "message": exc.message}
