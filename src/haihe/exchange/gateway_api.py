"""The data gateway under /api/v1/exchange/{resource_code}: records and bulk exports.

Every response of the gateway's routes, errors included, carries ``X-Request-ID``: the caller's
own (printable ASCII, up to 64 characters) or one made here; the audit entry of the call has it too.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from haihe.core.db import transaction
from haihe.core.web import get_optional_principal, get_principal
from haihe.exchange import gateway
from haihe.exchange.scope import conditions_from_params

REQUEST_ID = "X-Request-ID"
_REQUEST_ID_TEXT = re.compile(r"^[\x21-\x7e]{1,64}$")
RESERVED = frozenset({"items", "limit", "after"})


def request_id_of(request: Request) -> str:
    """Return the request's id (set by ``RequestIdRoute``; made here for other routes)."""
    known: str | None = getattr(request.state, "request_id", None)
    if known is None:
        known = request.state.request_id = _request_id(request.headers.get(REQUEST_ID, ""))
    return known


def _request_id(given: str) -> str:
    return given if _REQUEST_ID_TEXT.match(given) else uuid.uuid4().hex


class RequestIdRoute(APIRoute):
    """A route whose every response, error responses too, echoes the request id.

    It wraps the route's ASGI entry rather than its handler: an error must still pass through the
    request's dependencies (so the transaction rolls back and its rollback hooks run) before the
    app's exception handler renders it.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = _request_id(Headers(scope=scope).get(REQUEST_ID, ""))
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID] = request_id
            await send(message)

        await super().handle(scope, receive, send_with_id)


router = APIRouter(prefix="/api/v1/exchange", tags=["exchange gateway"], route_class=RequestIdRoute)


def _serve(request: Request, call: dict[str, Any]) -> gateway.Records:
    """Authenticate and serve one call in its own transaction, committed before the answer.

    The hot path of the platform, so it skips the generic dependencies: one hop to a worker
    thread instead of one per dependency, and the same session for the caller and the records.
    The transaction commits (or rolls back and runs its rollback hooks, which audit a refusal)
    before the response is sent: its writes hold SQLite's write lock until then.
    """
    with transaction(request.app.state.session_factory) as session:
        principal = get_principal(get_optional_principal(request, session))
        return gateway.query_records(
            session, actor=principal, settings=request.app.state.settings, **call
        )


class RecordsOut(BaseModel):
    """A page of records under the caller's grant."""

    resource: str = Field(description="Catalogue entry code.")
    version: int = Field(description="The resource version the records come from.")
    items: list[str] = Field(description="The items of every record, in order.")
    masked: list[str] = Field(description="Items shown masked (脱敏) under the grant.")
    records: list[dict[str, Any]] = Field(description="The records, as item → value objects.")
    next: str | None = Field(description="Cursor of the next page (pass as `after`), or null.")
    request_id: str = Field(description="The call's request id, as in the audit ledger.")


_FILTERS_DOC = (
    "Filters on granted items, any number, all of which a record must meet (and the grant's "
    "row scope too): `item=value` for equality, `item__op=value` for the other ops: `ne`, "
    "`lt`, `le`, `gt`, `ge`, `prefix` (text), `in` and `not_in` (comma-separated values), "
    "`between` (`low,high`, both included), `is_null=true`, `not_null=true`. Dates are ISO "
    "(`2024-05-01`). An item named like a parameter (`items`, `limit`, `after`) is filtered "
    "with an explicit op, e.g. `limit__eq=3`. Example: `age__ge=60&district=120101`."
)


@router.get(
    "/{resource_code}/records",
    response_model=None,
    responses={200: {"model": RecordsOut, "description": "A page of records."}},
    openapi_extra={
        "parameters": [
            {
                "name": "filters",
                "in": "query",
                "required": False,
                "style": "form",
                "explode": True,
                "schema": {"type": "object", "additionalProperties": {"type": "string"}},
                "description": _FILTERS_DOC,
            }
        ]
    },
)
async def records(
    request: Request,
    resource_code: Annotated[str, Path(description="Catalogue entry code, e.g. 101-000001.")],
    items: Annotated[
        str | None,
        Query(description="Comma-separated items to return (default: every granted item)."),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=gateway.MAX_LIMIT, description="Records per page.")
    ] = gateway.DEFAULT_LIMIT,
    after: Annotated[
        str | None, Query(description="The `next` cursor of the previous page.")
    ] = None,
) -> Response:
    """Records of a published resource under your grant for 查询 (query) — 数据查询.

    Only granted items come back, only rows within the grant's row scope, personal and sensitive
    items masked unless the grant names them unmasked. Asking for or filtering on an item outside
    the grant is refused (403) and returns nothing. Calls and rows count against the grant's
    daily quotas (Asia/Shanghai days); over them the answer is 429 with `Retry-After` (seconds to
    the next midnight). Every call, refused ones too, is recorded in the audit ledger with the
    request id (`X-Request-ID`: send your own or get one back).
    """
    request_id = request_id_of(request)
    filters = conditions_from_params(
        (key, value) for key, value in request.query_params.multi_items() if key not in RESERVED
    )
    wanted = [name.strip() for name in items.split(",") if name.strip()] if items else None
    call = {
        "code": resource_code,
        "items": wanted,
        "filters": filters,
        "after": after,
        "limit": limit,
        "request_id": request_id,
    }
    if request.app.state.engine.dialect.name == "sqlite":
        # in-process and CPU-bound: a worker thread would only add GIL contention and queue
        # writers behind each other; the event loop is blocked for about a millisecond
        page = _serve(request, call)
    else:
        page = await run_in_threadpool(_serve, request, call)
    body = {
        "resource": page.resource,
        "version": page.version,
        "items": page.items,
        "masked": page.masked,
        "records": page.records,
        "next": page.next,
        "request_id": page.request_id,
    }
    return Response(
        json.dumps(body, ensure_ascii=False, default=_json_value), media_type="application/json"
    )


def _json_value(value: Any) -> Any:
    """JSON for the values rows hold beyond JSON's own: dates, times and decimals."""
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
