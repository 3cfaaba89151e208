"""Commands `haihe orgs …`, `haihe users …` and `haihe clients …`.

The CLI is run by the installation's operator on the server, so it acts as the platform admin.
"""

from __future__ import annotations

import typer

from haihe.core.auth import Role, system_principal
from haihe.core.clikit import JsonOption, print_json, print_table, session_for, settings_of
from haihe.orgs import auth, service
from haihe.orgs import schemas as views
from haihe.orgs.models import OrgKind
from haihe.orgs.schemas import (
    ClientCreate,
    ClientUpdate,
    OrgCreate,
    OrgUpdate,
    SystemCreate,
    UserCreate,
    UserUpdate,
)

orgs_app = typer.Typer(help="Member organisations (成员单位) and their information systems.")
systems_app = typer.Typer(help="Information systems (信息系统) of an organisation.")
users_app = typer.Typer(help="Users (用户) and their roles.")
clients_app = typer.Typer(help="API clients (接入应用) and their secrets.")
orgs_app.add_typer(systems_app, name="systems")

ACTOR = system_principal("cli")


@orgs_app.command("list")
def orgs_list(
    ctx: typer.Context,
    kind: OrgKind | None = typer.Option(None, help="Only this kind."),
    parent: str | None = typer.Option(None, help="Only direct children of this org code."),
    q: str | None = typer.Option(None, "--search", "-q", help="Part of a code or name."),
    limit: int = typer.Option(100, min=1, max=100_000, help="Rows to show."),
    as_json: bool = JsonOption,
) -> None:
    """List organisations."""
    with session_for(settings_of(ctx)) as session:
        rows, total = service.list_orgs(session, kind=kind, parent_code=parent, q=q, limit=limit)
        out = [views.org_out(o) for o in rows]
    if as_json:
        print_json([o.model_dump(mode="json") for o in out])
        return
    print_table(
        ["code", "name", "name (en)", "kind", "parent", "region", "active"],
        [
            (o.code, o.name_zh, o.name_en, o.kind.value, o.parent_code, o.region_code, o.active)
            for o in out
        ],
        title=f"{len(out)} of {total} organisations",
    )


@orgs_app.command("add")
def orgs_add(
    ctx: typer.Context,
    code: str = typer.Argument(..., help="Stable code, e.g. GA or 120101."),
    name_zh: str = typer.Option(..., "--name", help="Chinese name, e.g. 市公安局."),
    kind: OrgKind = typer.Option(..., help="Kind of organisation."),
    name_en: str | None = typer.Option(None, "--name-en", help="English name."),
    parent: str | None = typer.Option(None, help="Parent org code."),
    region: str | None = typer.Option(None, help="GB/T 2260 region code."),
    credit_code: str | None = typer.Option(None, help="Unified social credit code."),
) -> None:
    """Register an organisation."""
    data = OrgCreate(
        code=code,
        name_zh=name_zh,
        name_en=name_en,
        kind=kind,
        parent_code=parent,
        region_code=region,
        credit_code=credit_code,
    )
    with session_for(settings_of(ctx)) as session:
        org = service.create_org(session, actor=ACTOR, data=data)
        typer.echo(f"added {org.kind.value} {org.code} {org.name_zh}")


@orgs_app.command("show")
def orgs_show(ctx: typer.Context, code: str = typer.Argument(..., help="Org code.")) -> None:
    """Show one organisation and its systems as JSON."""
    with session_for(settings_of(ctx)) as session:
        org = views.org_out(service.get_org(session, code=code)).model_dump(mode="json")
        org["systems"] = [
            views.system_out(s).model_dump(mode="json")
            for s in service.list_systems(session, org_code=code)
        ]
    print_json(org)


@orgs_app.command("update")
def orgs_update(
    ctx: typer.Context,
    code: str = typer.Argument(..., help="Org code."),
    name_zh: str | None = typer.Option(None, "--name", help="New Chinese name."),
    name_en: str | None = typer.Option(None, "--name-en", help="New English name."),
    parent: str | None = typer.Option(None, help="New parent org code."),
    active: bool | None = typer.Option(None, "--active/--inactive", help="(De)activate."),
) -> None:
    """Change an organisation."""
    fields = {"name_zh": name_zh, "name_en": name_en, "parent_code": parent, "active": active}
    data = OrgUpdate(**{k: v for k, v in fields.items() if v is not None})
    with session_for(settings_of(ctx)) as session:
        org = service.update_org(session, actor=ACTOR, code=code, data=data)
        typer.echo(f"updated {org.code}")


@systems_app.command("add")
def systems_add(
    ctx: typer.Context,
    org: str = typer.Argument(..., help="Owning org code."),
    code: str = typer.Argument(..., help="System code, unique within the org."),
    name: str = typer.Option(..., help="System name."),
    description: str | None = typer.Option(None, help="What the system is for."),
) -> None:
    """Register an information system of an organisation."""
    data = SystemCreate(code=code, name=name, description=description)
    with session_for(settings_of(ctx)) as session:
        system = service.create_system(session, actor=ACTOR, org_code=org, data=data)
        typer.echo(f"added system {org}/{system.code}")


@systems_app.command("list")
def systems_list(ctx: typer.Context, org: str = typer.Argument(..., help="Org code.")) -> None:
    """List an organisation's information systems."""
    with session_for(settings_of(ctx)) as session:
        rows = [views.system_out(s) for s in service.list_systems(session, org_code=org)]
    print_table(["code", "name", "active"], [(s.code, s.name, s.active) for s in rows])


@users_app.command("list")
def users_list(
    ctx: typer.Context,
    org: str | None = typer.Option(None, help="Only users of this org code."),
    q: str | None = typer.Option(None, "--search", "-q", help="Part of a username or name."),
    limit: int = typer.Option(100, min=1, max=100_000, help="Rows to show."),
    as_json: bool = JsonOption,
) -> None:
    """List users."""
    with session_for(settings_of(ctx)) as session:
        rows, total = service.list_users(session, actor=ACTOR, org_code=org, q=q, limit=limit)
        out = [views.user_out(u) for u in rows]
    if as_json:
        print_json([u.model_dump(mode="json") for u in out])
        return
    print_table(
        ["username", "name", "org", "roles", "active"],
        [(u.username, u.display_name, u.org_code, ",".join(u.roles), u.active) for u in out],
        title=f"{len(out)} of {total} users",
    )


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    username: str = typer.Argument(..., help="Login name."),
    display_name: str = typer.Option(..., "--name", help="Name shown in the console."),
    org: str | None = typer.Option(None, help="Org code (not needed for residents)."),
    role: list[Role] = typer.Option([], "--role", help="A role; repeat for several."),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, help="At least 8 chars."
    ),
) -> None:
    """Create a user (the password is asked for when not given)."""
    data = UserCreate(
        username=username, display_name=display_name, password=password, org_code=org, roles=role
    )
    with session_for(settings_of(ctx)) as session:
        user = service.create_user(session, actor=ACTOR, data=data)
        typer.echo(f"added user {user.username} ({', '.join(sorted(user.roles)) or 'no roles'})")


@users_app.command("update")
def users_update(
    ctx: typer.Context,
    username: str = typer.Argument(..., help="Login name."),
    display_name: str | None = typer.Option(None, "--name", help="New display name."),
    role: list[Role] | None = typer.Option(None, "--role", help="Replace the roles; repeatable."),
    active: bool | None = typer.Option(None, "--active/--inactive", help="(De)activate."),
) -> None:
    """Change a user's name, roles or status."""
    fields = {"display_name": display_name, "roles": role or None, "active": active}
    data = UserUpdate(**{k: v for k, v in fields.items() if v is not None})
    with session_for(settings_of(ctx)) as session:
        user = service.update_user(session, actor=ACTOR, username=username, data=data)
        typer.echo(f"updated {user.username}")


@users_app.command("passwd")
def users_passwd(
    ctx: typer.Context,
    username: str = typer.Argument(..., help="Login name."),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, help="The new password."
    ),
) -> None:
    """Reset a user's password (signs the user out everywhere, lifts a lock-out)."""
    with session_for(settings_of(ctx)) as session:
        service.update_user(
            session, actor=ACTOR, username=username, data=UserUpdate(password=password)
        )
        typer.echo(f"password of {username} reset")


@users_app.command("link-identity")
def users_link_identity(
    ctx: typer.Context,
    username: str = typer.Argument(..., help="Login name of the resident."),
    id_number: str = typer.Argument(..., help="The resident's ID number (GB 11643)."),
) -> None:
    """Link a resident's ID number to a user (only its keyed pseudonym is stored)."""
    settings = settings_of(ctx)
    with session_for(settings) as session:
        service.link_identity(
            session,
            actor=ACTOR,
            username=username,
            id_number=id_number,
            key=settings.secret_key_bytes(),
        )
        typer.echo(f"linked {username} to a resident identity (only its pseudonym is kept)")


@clients_app.command("list")
def clients_list(
    ctx: typer.Context,
    org: str | None = typer.Option(None, help="Only clients of this org code."),
    as_json: bool = JsonOption,
) -> None:
    """List API clients (never their secrets)."""
    with session_for(settings_of(ctx)) as session:
        rows, total = auth.list_clients(session, actor=ACTOR, org_code=org, limit=100_000)
        out = [views.client_out(c) for c in rows]
    if as_json:
        print_json([c.model_dump(mode="json") for c in out])
        return
    print_table(
        ["client_id", "name", "org", "system", "active", "last used"],
        [(c.client_id, c.name, c.org_code, c.system_code, c.active, c.last_used_at) for c in out],
        title=f"{total} API clients",
    )


@clients_app.command("add")
def clients_add(
    ctx: typer.Context,
    org: str = typer.Argument(..., help="Org code the client acts for."),
    name: str = typer.Option(..., help="What the client is."),
    system: str | None = typer.Option(None, help="Code of the org's system it acts for."),
) -> None:
    """Create an API client and print its secret (shown this once)."""
    data = ClientCreate(name=name, org_code=org, system_code=system)
    with session_for(settings_of(ctx)) as session:
        client, secret = auth.create_client(session, actor=ACTOR, data=data)
        print_json({"client_id": client.client_id, "client_secret": secret})


@clients_app.command("rotate")
def clients_rotate(
    ctx: typer.Context, client_id: str = typer.Argument(..., help="The client's id.")
) -> None:
    """Give a client a new secret; the old secret and its tokens stop working."""
    with session_for(settings_of(ctx)) as session:
        client, secret = auth.rotate_client_secret(session, actor=ACTOR, client_id=client_id)
        print_json({"client_id": client.client_id, "client_secret": secret})


@clients_app.command("disable")
def clients_disable(
    ctx: typer.Context, client_id: str = typer.Argument(..., help="The client's id.")
) -> None:
    """Disable a client and revoke its tokens."""
    with session_for(settings_of(ctx)) as session:
        auth.update_client(
            session, actor=ACTOR, client_id=client_id, data=ClientUpdate(active=False)
        )
        typer.echo(f"disabled {client_id}")
