"""Members — 成员单位: organisations, systems and users, with who may change what.

Services take the acting principal and keyword-only arguments, flush but never commit.
Sign-in and tokens live in ``haihe.orgs.auth``.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from haihe.core.auth import Principal, Role
from haihe.core.db import utcnow
from haihe.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from haihe.core.identity import normalise_id, normalise_uscc
from haihe.core.masking import pseudonymise
from haihe.core.security import hash_password, verify_password
from haihe.orgs import repository as repo
from haihe.orgs.models import (
    ALLOWED_PARENTS,
    InformationSystem,
    Organisation,
    OrgKind,
    User,
    UserRole,
)
from haihe.orgs.schemas import (
    OrgCreate,
    OrgUpdate,
    SystemCreate,
    SystemUpdate,
    UserCreate,
    UserUpdate,
)

# Roles only the platform admin may hand out: they reach beyond one organisation.
PLATFORM_ROLES = frozenset({Role.PLATFORM_ADMIN, Role.AUDITOR})
# Roles that need no organisation: residents sign in as themselves.
ORGLESS_ROLES = frozenset({Role.RESIDENT, Role.PLATFORM_ADMIN, Role.AUDITOR})


def require_platform_admin(actor: Principal) -> None:
    if not actor.is_platform_admin:
        raise Forbidden("only the platform admin may do this")


def require_admin_of(actor: Principal, org_id: int | None) -> None:
    if not actor.admin_of(org_id):
        raise Forbidden("only the platform admin or this organisation's admin may do this")


# ---------------------------------------------------------------- organisations


def find_org(session: Session, *, code: str) -> Organisation | None:
    """The organisation ``code``, or None (for callers that report a missing one themselves)."""
    return repo.org_by_code(session, code)


def get_org(session: Session, *, code: str) -> Organisation:
    org = repo.org_by_code(session, code)
    if org is None:
        raise NotFound(f"organisation {code!r} does not exist")
    return org


def create_org(session: Session, *, actor: Principal, data: OrgCreate) -> Organisation:
    """A new organisation, placed under its parent in the city hierarchy."""
    require_platform_admin(actor)
    if repo.org_by_code(session, data.code) is not None:
        raise Conflict(f"organisation code {data.code!r} already exists")
    parent = _parent_for(session, kind=data.kind, parent_code=data.parent_code)
    _check_region(data.region_code, parent)
    org = Organisation(
        code=data.code,
        name_zh=data.name_zh,
        name_en=data.name_en,
        kind=data.kind,
        parent_id=parent.id if parent else None,
        parent=parent,
        region_code=data.region_code,
        credit_code=_unique_credit_code(session, data.credit_code, org_id=None),
        active=True,
    )
    session.add(org)
    session.flush()
    return org


def update_org(session: Session, *, actor: Principal, code: str, data: OrgUpdate) -> Organisation:
    """The organisation after applying the given fields.

    An org admin may rename its own organisation and set its credit code; moving it, changing its
    region or (de)activating it is the platform admin's.
    """
    org = get_org(session, code=code)
    require_admin_of(actor, org.id)
    fields = data.model_dump(exclude_unset=True)
    if not actor.is_platform_admin and fields.keys() & {"active", "parent_code", "region_code"}:
        raise Forbidden("only the platform admin may move, re-code or (de)activate organisations")
    if "parent_code" in fields:
        parent = _parent_for(session, kind=org.kind, parent_code=data.parent_code)
        if parent is not None and (
            parent.id == org.id or org in repo.ancestors_of(session, parent)
        ):
            raise InvalidInput(f"{parent.code!r} is inside {org.code!r}; that would make a loop")
        org.parent = parent
        org.parent_id = parent.id if parent else None
    if "region_code" in fields:
        _check_region(data.region_code, org.parent)
        org.region_code = data.region_code
    if "credit_code" in fields:
        org.credit_code = _unique_credit_code(session, data.credit_code, org_id=org.id)
    for name in ("name_zh", "name_en", "active"):
        if name in fields and (name == "name_en" or fields[name] is not None):
            setattr(org, name, fields[name])
    session.flush()
    return org


def list_orgs(
    session: Session,
    *,
    kind: OrgKind | None = None,
    parent_code: str | None = None,
    q: str | None = None,
    active: bool | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[Sequence[Organisation], int]:
    parent_id = get_org(session, code=parent_code).id if parent_code else None
    return repo.list_orgs(
        session, kind=kind, parent_id=parent_id, q=q, active=active, limit=limit, offset=offset
    )


def _parent_for(session: Session, *, kind: OrgKind, parent_code: str | None) -> Organisation | None:
    parent = None
    if parent_code is not None:
        parent = repo.org_by_code(session, parent_code)
        if parent is None:
            raise InvalidInput(f"parent organisation {parent_code!r} does not exist")
    allowed = ALLOWED_PARENTS[kind]
    if (parent.kind if parent else None) not in allowed:
        wanted = " or ".join(sorted(k.value if k else "no parent" for k in allowed))
        got = parent.kind.value if parent else "no parent"
        raise InvalidInput(f"a {kind.value} must have {wanted} as parent, not {got}")
    return parent


def _region_prefix(code: str) -> str:
    """The significant part of a region code: 120000 (Tianjin) → 12, 120100 → 1201."""
    if len(code) == 6:
        while code.endswith("00") and len(code) > 2:
            code = code[:-2]
    return code


def _check_region(region_code: str | None, parent: Organisation | None) -> None:
    if region_code and parent is not None and parent.region_code:
        if not region_code.startswith(_region_prefix(parent.region_code)):
            raise InvalidInput(
                f"region code {region_code} is not inside the parent's region "
                f"{parent.region_code} ({parent.code})"
            )


def _unique_credit_code(session: Session, raw: str | None, *, org_id: int | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    code = normalise_uscc(raw)
    holder = repo.org_by_credit_code(session, code)
    if holder is not None and holder.id != org_id:
        raise Conflict(f"credit code {code} already belongs to organisation {holder.code!r}")
    return code


# ---------------------------------------------------------------- information systems


def get_system(session: Session, *, org_code: str, code: str) -> InformationSystem:
    org = get_org(session, code=org_code)
    system = repo.system_by_code(session, org.id, code)
    if system is None:
        raise NotFound(f"organisation {org_code!r} has no information system {code!r}")
    return system


def create_system(
    session: Session, *, actor: Principal, org_code: str, data: SystemCreate
) -> InformationSystem:
    """A new information system owned by ``org_code`` — the unit access is granted to."""
    org = get_org(session, code=org_code)
    require_admin_of(actor, org.id)
    if repo.system_by_code(session, org.id, data.code) is not None:
        raise Conflict(f"organisation {org_code!r} already has a system {data.code!r}")
    system = InformationSystem(
        org_id=org.id, org=org, code=data.code, name=data.name, description=data.description
    )
    session.add(system)
    session.flush()
    return system


def update_system(
    session: Session, *, actor: Principal, org_code: str, code: str, data: SystemUpdate
) -> InformationSystem:
    system = get_system(session, org_code=org_code, code=code)
    require_admin_of(actor, system.org_id)
    for name, value in data.model_dump(exclude_unset=True).items():
        if value is not None or name == "description":
            setattr(system, name, value)
    session.flush()
    return system


def list_systems(session: Session, *, org_code: str) -> Sequence[InformationSystem]:
    return repo.systems_of(session, get_org(session, code=org_code).id)


# ---------------------------------------------------------------- users


def get_user(session: Session, *, username: str) -> User:
    user = repo.user_by_username(session, username)
    if user is None:
        raise NotFound(f"user {username!r} does not exist")
    return user


def can_see_user(actor: Principal, user: User) -> bool:
    if actor.kind == "user" and actor.id == user.id:
        return True
    return actor.has(Role.AUDITOR) or actor.admin_of(user.org_id)


def create_user(session: Session, *, actor: Principal, data: UserCreate) -> User:
    """A new user with a hashed password and the given roles."""
    org = get_org(session, code=data.org_code) if data.org_code else None
    require_admin_of(actor, org.id if org else None)
    roles = set(data.roles)
    _check_roles(actor, roles, org)
    if repo.user_by_username(session, data.username) is not None:
        raise Conflict(f"username {data.username!r} is taken")
    user = User(
        username=data.username,
        display_name=data.display_name,
        password_hash=hash_password(data.password),
        org_id=org.id if org else None,
        org=org,
        language=data.language,
        active=True,
        failed_logins=0,
        role_rows=[UserRole(role=r) for r in sorted(roles)],
    )
    session.add(user)
    session.flush()
    return user


def update_user(session: Session, *, actor: Principal, username: str, data: UserUpdate) -> User:
    """The user after applying the given fields; a password reset signs the user out."""
    user = get_user(session, username=username)
    is_self = actor.kind == "user" and actor.id == user.id
    fields = data.model_dump(exclude_unset=True)
    if is_self and fields.keys() <= {"display_name", "language"}:
        pass  # anyone may rename themselves and choose a language
    else:
        require_admin_of(actor, user.org_id)
        if not actor.is_platform_admin and user.roles & PLATFORM_ROLES:
            raise Forbidden("only the platform admin may change a platform-level user")
    if data.roles is not None:
        roles = set(data.roles)
        _check_roles(actor, roles, user.org)
        if Role.PLATFORM_ADMIN in user.roles and Role.PLATFORM_ADMIN not in roles:
            _keep_one_platform_admin(session, user)
        user.role_rows = [UserRole(role=r) for r in sorted(roles)]
    if data.active is False and Role.PLATFORM_ADMIN in user.roles:
        _keep_one_platform_admin(session, user)
    if data.password is not None:
        user.password_hash = hash_password(data.password)
        user.failed_logins = 0
        user.locked_until = None
        repo.revoke_tokens(session, user_id=user.id, now=utcnow())
    if data.active is False:
        repo.revoke_tokens(session, user_id=user.id, now=utcnow())
    for name in ("display_name", "active", "language"):
        if name in fields and (fields[name] is not None or name == "language"):
            setattr(user, name, fields[name])
    session.flush()
    return user


def change_own_password(
    session: Session, *, actor: Principal, current_password: str, new_password: str
) -> User:
    """The signed-in user with a new password; other sessions and tokens are revoked."""
    if actor.kind != "user":
        raise Forbidden("only a signed-in user has a password to change")
    user = get_user(session, username=actor.name)
    if not verify_password(user.password_hash, current_password):
        raise InvalidInput("the current password is wrong")
    user.password_hash = hash_password(new_password)
    repo.revoke_tokens(session, user_id=user.id, now=utcnow())
    session.flush()
    return user


def list_users(
    session: Session,
    *,
    actor: Principal,
    org_code: str | None = None,
    q: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[Sequence[User], int]:
    """Users the actor may see: all for the platform admin and auditors, else its own org's."""
    org_id = get_org(session, code=org_code).id if org_code else None
    if not (actor.is_platform_admin or actor.has(Role.AUDITOR)):
        if not actor.has(Role.ORG_ADMIN) or actor.org_id is None:
            raise Forbidden("listing users needs the org_admin, auditor or platform_admin role")
        if org_id is not None and org_id != actor.org_id:
            raise Forbidden("an org admin sees only its own organisation's users")
        org_id = actor.org_id
    return repo.list_users(session, org_id=org_id, q=q, limit=limit, offset=offset)


def link_identity(
    session: Session, *, actor: Principal, username: str, id_number: str, key: bytes
) -> User:
    """The user, linked to a resident's identity by the keyed pseudonym of the ID number.

    Only the pseudonym (``pseudonymise(key, normalised_id)``) is stored, never the number: it
    is the token the audit ledger keeps for the persons an entry used (the "my data" page).
    """
    require_platform_admin(actor)
    user = get_user(session, username=username)
    token = pseudonymise(key, normalise_id(id_number))
    holder = repo.user_by_subject_token(session, token)
    if holder is not None and holder.id != user.id:
        raise Conflict(f"this identity is already linked to user {holder.username!r}")
    user.subject_token = token
    session.flush()
    return user


def org_display_name(session: Session, *, code: str, lang: str) -> str:
    """An organisation's name in ``lang`` (zh or en), or the code when there is no such org."""
    org = find_org(session, code=code)
    if org is None:
        return code
    return (org.name_en if lang == "en" else None) or org.name_zh


def _check_roles(actor: Principal, roles: set[Role], org: Organisation | None) -> None:
    if roles & PLATFORM_ROLES and not actor.is_platform_admin:
        raise Forbidden("only the platform admin may grant platform_admin or auditor")
    if org is None and roles - ORGLESS_ROLES:
        needs = ", ".join(sorted(r.value for r in roles - ORGLESS_ROLES))
        raise InvalidInput(f"the roles {needs} need an organisation (org_code)")


def _keep_one_platform_admin(session: Session, user: User) -> None:
    if repo.count_active_with_role(session, Role.PLATFORM_ADMIN, except_user_id=user.id) == 0:
        raise Conflict("this is the last active platform admin; appoint another one first")
