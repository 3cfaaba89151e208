"""The open-data portal's rules — 开放规则: publishing, who may read what, applications for
有条件开放 datasets, API keys and usage counters.

Services take the acting principal and keyword-only arguments, flush but never commit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy.orm import Session

from haihe.catalogue import service as catalogue
from haihe.catalogue.models import OpenType, Resource, ResourceStatus
from haihe.core import calendar
from haihe.core.auth import Principal, Role
from haihe.core.db import utcnow
from haihe.core.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated, NotFound
from haihe.core.security import digest, new_token
from haihe.core.settings import Settings
from haihe.orgs import auth as orgs_auth
from haihe.orgs.models import Organisation
from haihe.portal import repository as repo
from haihe.portal.materialise import formats_for, materialise, remove_old, today_in_city
from haihe.portal.models import (
    ApiKey,
    Application,
    ApplicationStatus,
    Dataset,
    DatasetState,
    DatasetTag,
)
from haihe.portal.rules import check_open_type, check_view
from haihe.portal.schemas import (
    ApiKeyIn,
    ApplicationIn,
    DatasetIn,
    DatasetUpdate,
    UsageOut,
    UsageRow,
    ViewSpec,
)
from haihe.portal.topics import BY_NAME, LICENCE_BY_ID

REVIEW_WORKING_DAYS = 2  # an application is decided within 2 working days
KEY_PREFIX = "hhp_"


def actor_label(actor: Principal) -> str:
    return f"{actor.kind}:{actor.name}"


# ---------------------------------------------------------------- reading


def get_dataset(session: Session, *, ref: str) -> Dataset:
    """The active dataset whose id or name is ``ref``; NotFound otherwise (withdrawn too)."""
    ds = repo.dataset_by_ref(session, ref)
    if ds is None or ds.state is not DatasetState.ACTIVE:
        raise NotFound(f"dataset {ref!r} does not exist")
    return ds


def get_own_dataset(session: Session, *, actor: Principal, ref: str) -> Dataset:
    """Any dataset (withdrawn too) the actor administers; NotFound for others' withdrawn ones."""
    ds = repo.dataset_by_ref(session, ref)
    if ds is None or (ds.state is not DatasetState.ACTIVE and not actor.admin_of(ds.org_id)):
        raise NotFound(f"dataset {ref!r} does not exist")
    if not actor.admin_of(ds.org_id):
        raise Forbidden("only the providing organisation's admin or the platform admin may")
    return ds


def get_by_resource_uuid(session: Session, *, ref: str) -> Dataset:
    ds = repo.dataset_by_resource_uuid(session, ref)
    if ds is None or ds.state is not DatasetState.ACTIVE:
        raise NotFound(f"resource {ref!r} does not exist")
    return ds


def provider_of(session: Session, ds: Dataset) -> Organisation:
    org = repo.orgs_by_ids(session, {ds.org_id}).get(ds.org_id)
    assert org is not None  # RESTRICT keeps it
    return org


def resource_of(session: Session, ds: Dataset) -> Resource:
    resource = repo.resources_by_ids(session, {ds.resource_id}).get(ds.resource_id)
    assert resource is not None
    return resource


def may_read_data(session: Session, actor: Principal | None, ds: Dataset) -> bool:
    """True when ``actor`` may read the dataset's rows (everyone, for 无条件开放)."""
    if ds.open_type is OpenType.UNCONDITIONAL:
        return True
    if actor is None:
        return False
    if actor.admin_of(ds.org_id):
        return True
    return actor.kind == "user" and repo.approved(session, ds.id, actor.id)


def require_data_access(session: Session, actor: Principal | None, ds: Dataset) -> None:
    if not may_read_data(session, actor, ds):
        raise Forbidden(
            f"dataset {ds.name} is 有条件开放 (conditional): apply for it on the portal, then "
            "send your API key in the Authorization header",
            details={"dataset": ds.name},
        )


def readable_resource_uuids(
    session: Session, actor: Principal | None, refs: Sequence[str]
) -> dict[str, Dataset]:
    """The datasets behind ``refs`` (datastore resource ids) that ``actor`` may read."""
    found = repo.datasets_by_resource_uuids(session, refs)
    return {d.resource_uuid: d for d in found if may_read_data(session, actor, d)}


# ---------------------------------------------------------------- publishing


def publish(session: Session, *, actor: Principal, settings: Settings, data: DatasetIn) -> Dataset:
    """A new open dataset of a catalogue resource (or a view of it), with its data written.

    The provider's org admin or the platform admin publishes; the resource must be published in
    the catalogue, have data and not be 不予开放; the view must satisfy ``haihe.portal.rules``.
    """
    resource = catalogue.get_resource(session, actor=actor, code=data.resource_code)
    if not actor.admin_of(resource.provider_id):
        raise Forbidden("only the provider's admin or the platform admin may publish its data")
    if resource.status is not ResourceStatus.PUBLISHED:
        raise Conflict(
            f"catalogue entry {resource.code} is {resource.status.value}: publish it in the "
            "catalogue first"
        )
    open_type = check_open_type(resource, data.open_type)
    check_view(resource, data.view)  # refuses before anything is written
    _check_description(data.topic, data.licence_id)
    if open_type is OpenType.CONDITIONAL and not (data.terms or resource.open_conditions):
        raise InvalidInput("a 有条件开放 dataset needs terms that applicants accept")
    name = data.name or _free_name(session, resource.code)
    if repo.name_taken(session, name):
        raise Conflict(f"a dataset named {name!r} already exists")
    now = utcnow()
    ds = Dataset(
        uuid=str(uuid.uuid4()),
        resource_uuid=str(uuid.uuid4()),
        name=name,
        title_zh=data.title_zh,
        title_en=data.title_en,
        notes_zh=data.notes_zh,
        notes_en=data.notes_en,
        resource_id=resource.id,
        org_id=resource.provider_id,
        topic=data.topic,
        open_type=open_type,
        licence_id=data.licence_id,
        update_frequency=data.update_frequency or resource.update_cycle,
        view=data.view.model_dump(exclude_defaults=True),
        terms=data.terms or resource.open_conditions,
        state=DatasetState.ACTIVE,
        columns=[],
        formats="",
        created_by=actor_label(actor),
        created_at=now,
        modified_at=now,
    )
    ds.tags = [DatasetTag(tag=t) for t in data.tags]
    session.add(ds)
    session.flush()
    _write_data(settings, ds, resource, columns_actor=actor_label(actor))
    _index(session, ds)
    session.flush()
    return ds


def _write_data(settings: Settings, ds: Dataset, resource: Resource, *, columns_actor: str) -> None:
    view = ViewSpec.model_validate(ds.view)
    columns = check_view(resource, view)
    made = materialise(
        settings,
        dataset_uuid=ds.uuid,
        resource=resource,
        view=view,
        columns=columns,
        created_by=columns_actor,
    )
    ds.source_version = made.source_version
    ds.data_version = made.manifest.version
    ds.row_count = made.manifest.row_count
    ds.data_bytes = made.manifest.total_bytes
    ds.columns = made.fields
    ds.formats = ",".join(formats_for(made.manifest.row_count))
    ds.data_updated_at = utcnow()
    ds.modified_at = ds.data_updated_at
    remove_old(settings, ds.uuid, keep=made.manifest.version)


def refresh(
    session: Session, *, actor: Principal, settings: Settings, ref: str, force: bool = False
) -> bool:
    """Rewrite a dataset's data from its resource's current version; False when it was current.

    The resource's items may have changed since publishing: the view is checked again, and a
    view the rules now refuse stops the refresh with InvalidInput (the old data stays).
    """
    ds = get_own_dataset(session, actor=actor, ref=ref)
    resource = resource_of(session, ds)
    if not force and ds.source_version == resource.current_version:
        return False
    if resource.open_type is OpenType.NOT_OPEN:
        raise Conflict(f"catalogue entry {resource.code} became 不予开放: withdraw {ds.name}")
    _write_data(settings, ds, resource, columns_actor=actor_label(actor))
    session.flush()
    return True


def refresh_stale(session: Session, *, settings: Settings, actor: Principal) -> list[str]:
    """Refresh every active dataset whose resource has a new version; return their names.

    A resource that became 不予开放 withdraws its datasets instead, so they never serve data
    the catalogue no longer opens.
    """
    done: list[str] = []
    for ds in repo.stale_datasets(session):
        resource = resource_of(session, ds)
        if resource.open_type is OpenType.NOT_OPEN:
            ds.state = DatasetState.WITHDRAWN
            ds.modified_at = utcnow()
        else:
            _write_data(settings, ds, resource, columns_actor=actor_label(actor))
        done.append(ds.name)
    session.flush()
    return done


def update_dataset(session: Session, *, actor: Principal, ref: str, data: DatasetUpdate) -> Dataset:
    """The dataset after changing its description (its view and data stay)."""
    ds = get_own_dataset(session, actor=actor, ref=ref)
    fields = data.model_dump(exclude_unset=True)
    _check_description(fields.get("topic", ds.topic), fields.get("licence_id", ds.licence_id))
    for name in ("title_zh", "title_en", "notes_zh", "notes_en", "topic", "licence_id",
                 "update_frequency", "terms"):  # fmt: skip
        if name in fields and (fields[name] is not None or name in ("title_en", "notes_en")):
            setattr(ds, name, fields[name])
    if data.tags is not None:
        wanted = sorted({t.strip() for t in data.tags if t.strip()})
        ds.tags = [DatasetTag(tag=t) for t in wanted]
    ds.modified_at = utcnow()
    _index(session, ds)
    session.flush()
    return ds


def set_state(session: Session, *, actor: Principal, ref: str, state: DatasetState) -> Dataset:
    """Withdraw a dataset from the portal, or put a withdrawn one back."""
    ds = get_own_dataset(session, actor=actor, ref=ref)
    if state is DatasetState.ACTIVE and resource_of(session, ds).open_type is OpenType.NOT_OPEN:
        raise Conflict("its catalogue entry is 不予开放 now: it cannot be put back")
    ds.state = state
    ds.modified_at = utcnow()
    session.flush()
    return ds


def list_own(
    session: Session, *, actor: Principal, limit: int, offset: int
) -> tuple[Sequence[Dataset], int]:
    """Datasets the actor administers: all for the platform admin, its org's for an org admin."""
    if actor.is_platform_admin:
        return repo.list_datasets(session, org_id=None, state=None, limit=limit, offset=offset)
    if actor.org_id is None or not actor.has(Role.ORG_ADMIN):
        raise Forbidden("only organisation admins and the platform admin manage datasets")
    return repo.list_datasets(session, org_id=actor.org_id, state=None, limit=limit, offset=offset)


def _check_description(topic: str, licence_id: str) -> None:
    if topic not in BY_NAME:
        raise InvalidInput(
            f"topic {topic!r} is unknown; use one of {', '.join(BY_NAME)}",
            details={"topic": topic},
        )
    if licence_id not in LICENCE_BY_ID:
        raise InvalidInput(
            f"licence {licence_id!r} is unknown; use one of {', '.join(LICENCE_BY_ID)}",
            details={"licence_id": licence_id},
        )


def _free_name(session: Session, code: str) -> str:
    base = "".join(ch if ch.isalnum() else "-" for ch in code.lower()).strip("-")
    base = f"ds-{base}"[:90]
    name, n = base, 1
    while repo.name_taken(session, name):
        n += 1
        name = f"{base}-{n}"
    return name


def _index(session: Session, ds: Dataset) -> None:
    org = provider_of(session, ds)
    topic = BY_NAME[ds.topic]
    parts = [
        ds.name, ds.title_zh, ds.title_en or "", ds.notes_zh, ds.notes_en or "",
        org.code, org.name_zh, org.name_en or "", topic.zh, topic.en,
        " ".join(t.tag for t in ds.tags),
        " ".join(str(c.get("info", {}).get("label") or "") for c in ds.columns),
    ]  # fmt: skip
    ds.search_text = "\n".join(p for p in parts if p).lower()


# ---------------------------------------------------------------- applications


def can_apply(actor: Principal) -> bool:
    """Registered users apply: residents and users of an organisation (not API clients)."""
    return actor.kind == "user" and (actor.has(Role.RESIDENT) or actor.org_id is not None)


def apply(
    session: Session, *, actor: Principal, data: ApplicationIn, now: dt.datetime | None = None
) -> Application:
    """A pending application for a 有条件开放 dataset, due in 2 working days."""
    if not can_apply(actor):
        raise Forbidden("sign in as a registered resident or organisation user to apply")
    ds = get_dataset(session, ref=data.dataset)
    if ds.open_type is not OpenType.CONDITIONAL:
        raise Conflict(f"dataset {ds.name} is 无条件开放: anyone may use it without applying")
    if not data.accept_terms:
        raise InvalidInput("accept the dataset's terms to apply", details={"terms": ds.terms})
    if repo.open_application(session, ds.id, actor.id) is not None:
        raise Conflict(f"you already have a pending or approved application for {ds.name}")
    moment = now or utcnow()
    app = Application(
        dataset_id=ds.id,
        user_id=actor.id,
        purpose=data.purpose,
        accepted_terms=True,
        status=ApplicationStatus.PENDING,
        submitted_at=moment,
        due_on=calendar.add_working_days(session, today_in_city(moment), REVIEW_WORKING_DAYS),
    )
    session.add(app)
    session.flush()
    return app


def _application_for(
    session: Session, actor: Principal, app_id: int
) -> tuple[Application, Dataset]:
    app = repo.application(session, app_id)
    if app is None:
        raise NotFound(f"application {app_id} does not exist")
    ds = session.get(Dataset, app.dataset_id)
    assert ds is not None
    if not (actor.admin_of(ds.org_id) or (actor.kind == "user" and actor.id == app.user_id)):
        raise NotFound(f"application {app_id} does not exist")
    return app, ds


def get_application(session: Session, *, actor: Principal, app_id: int) -> Application:
    return _application_for(session, actor, app_id)[0]


def decide(
    session: Session, *, actor: Principal, app_id: int, approve: bool, reason: str | None
) -> Application:
    """Approve or refuse a pending application (the provider's admin or the platform admin)."""
    app, ds = _application_for(session, actor, app_id)
    if not actor.admin_of(ds.org_id):
        raise Forbidden("only the provider's admin or the platform admin decides applications")
    if app.status is not ApplicationStatus.PENDING:
        raise Conflict(f"application {app_id} is {app.status.value}, not pending")
    if not approve and not (reason or "").strip():
        raise InvalidInput("say why the application is refused", details={"reason": None})
    app.status = ApplicationStatus.APPROVED if approve else ApplicationStatus.REFUSED
    app.decided_at = utcnow()
    app.decided_by = actor_label(actor)
    app.reason = reason
    session.flush()
    return app


def withdraw_application(session: Session, *, actor: Principal, app_id: int) -> Application:
    """The applicant withdraws a pending application, or gives up an approved one."""
    app, _ds = _application_for(session, actor, app_id)
    if not (actor.kind == "user" and actor.id == app.user_id):
        raise Forbidden("only the applicant withdraws an application")
    if app.status not in (ApplicationStatus.PENDING, ApplicationStatus.APPROVED):
        raise Conflict(f"application {app_id} is {app.status.value}")
    app.status = ApplicationStatus.WITHDRAWN
    app.decided_at = utcnow()
    session.flush()
    return app


def list_applications(
    session: Session,
    *,
    actor: Principal,
    inbox: bool,
    status: ApplicationStatus | None,
    limit: int,
    offset: int,
) -> tuple[list[tuple[Application, Dataset, str]], int]:
    """The actor's own applications, or (``inbox``) those for datasets it administers."""
    if inbox:
        if actor.is_platform_admin:
            org_id = None
        elif actor.has(Role.ORG_ADMIN) and actor.org_id is not None:
            org_id = actor.org_id
        else:
            raise Forbidden("the inbox is for organisation admins and the platform admin")
        rows, total = repo.list_applications(
            session, user_id=None, org_id=org_id, status=status, limit=limit, offset=offset
        )
    else:
        if actor.kind != "user":
            raise Forbidden("applications belong to users")
        rows, total = repo.list_applications(
            session, user_id=actor.id, org_id=None, status=status, limit=limit, offset=offset
        )
    return [(a, d, u.username) for a, d, u in rows], total


# ---------------------------------------------------------------- API keys


def create_api_key(session: Session, *, actor: Principal, data: ApiKeyIn) -> tuple[ApiKey, str]:
    """A new API key of the signed-in user; the key itself is returned once, never stored."""
    if actor.kind != "user":
        raise Forbidden("API keys belong to signed-in users")
    secret = new_token(KEY_PREFIX)
    key = ApiKey(user_id=actor.id, name=data.name, digest=digest(secret), prefix=secret[:12])
    session.add(key)
    session.flush()
    return key, secret


def list_api_keys(session: Session, *, actor: Principal) -> Sequence[ApiKey]:
    if actor.kind != "user":
        raise Forbidden("API keys belong to signed-in users")
    return repo.api_keys_of(session, actor.id)


def revoke_api_key(session: Session, *, actor: Principal, key_id: int) -> ApiKey:
    key = repo.api_key(session, key_id)
    if key is None or not (actor.kind == "user" and key.user_id == actor.id):
        raise NotFound(f"API key {key_id} does not exist")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.flush()
    return key


def principal_for_key(session: Session, secret: str, *, today: dt.date) -> Principal:
    """The user an API key stands for; NotAuthenticated when it is unknown or revoked."""
    key = repo.api_key_by_digest(session, digest(secret.strip()))
    user = repo.user_by_id(session, key.user_id) if key is not None else None
    principal = orgs_auth.principal_of_user(user) if user is not None else None
    if key is None or key.revoked_at is not None or principal is None:
        raise NotAuthenticated("the API key is invalid or revoked")
    if key.last_used_on != today:
        key.last_used_on = today
        session.flush()
    return principal


# ---------------------------------------------------------------- usage


def count_use(session: Session, *, ds: Dataset, what: str, now: dt.datetime | None = None) -> None:
    """Count one view, download or API call of a dataset on today's row."""
    repo.bump_usage(session, dataset_id=ds.id, day=today_in_city(now or utcnow()), what=what)


def usage(session: Session, *, actor: Principal, by: str, start: dt.date, end: dt.date) -> UsageOut:
    """Usage by dataset, topic or day: every dataset for the platform admin and auditors (the
    bureau), an organisation's own for its admin."""
    if by not in ("dataset", "topic", "day"):
        raise InvalidInput("by: dataset, topic or day")
    if end < start:
        raise InvalidInput(f"end {end} is before start {start}")
    if actor.is_platform_admin or actor.has(Role.AUDITOR):
        org_id = None
    elif actor.has(Role.ORG_ADMIN) and actor.org_id is not None:
        org_id = actor.org_id
    else:
        raise Forbidden("usage figures are for the bureau and organisation admins")
    rows = repo.usage_by(session, by=by, start=start, end=end, org_id=org_id)
    titles = {t.name: t.zh for t in BY_NAME.values()}
    return UsageOut(
        start=start,
        end=end,
        by=by,
        rows=[
            UsageRow(
                key=k,
                title=titles.get(k, k) if by == "topic" else k,
                views=v,
                downloads=d,
                api_calls=c,
            )
            for k, v, d, c in rows
        ],
    )
