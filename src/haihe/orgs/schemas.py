"""What the members API takes in and gives out."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from haihe.core.auth import Role
from haihe.orgs.models import ApiClient, InformationSystem, Organisation, OrgKind, User

T = TypeVar("T")

Code = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"),
    Field(description="Stable code: letters, digits, '_', '.', '-'; at most 64 characters."),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Username = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{1,63}$"),
    Field(description="Login name: 2-64 letters, digits, '_', '.', '@', '-'."),
]
Password = Annotated[
    str, StringConstraints(min_length=8, max_length=256), Field(description="At least 8 chars.")
]
RegionCode = Annotated[
    str,
    StringConstraints(pattern=r"^\d{6}(\d{3}(\d{3})?)?$"),
    Field(description="GB/T 2260 region code (6 digits), or 9/12 digits for streets/communities."),
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class OrgCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Code
    name_zh: Name
    name_en: Name | None = None
    kind: OrgKind
    parent_code: Code | None = None
    region_code: RegionCode | None = None
    credit_code: str | None = Field(
        None, description="Unified social credit code (统一社会信用代码, GB 32100-2015)."
    )


class OrgUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name_zh: Name | None = None
    name_en: Name | None = None
    active: bool | None = None
    parent_code: Code | None = None
    region_code: RegionCode | None = None
    credit_code: str | None = None


class OrgOut(BaseModel):
    code: str
    name_zh: str
    name_en: str | None
    kind: OrgKind
    parent_code: str | None
    region_code: str | None
    credit_code: str | None
    active: bool
    created_at: dt.datetime


class SystemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Code
    name: Name
    description: str | None = Field(None, max_length=2000)


class SystemUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: str | None = Field(None, max_length=2000)
    active: bool | None = None


class SystemOut(BaseModel):
    org_code: str
    code: str
    name: str
    description: str | None
    active: bool
    created_at: dt.datetime


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    display_name: Name
    password: Password
    org_code: Code | None = None
    roles: list[Role] = Field(default_factory=list)
    language: Literal["zh", "en"] | None = None


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: Name | None = None
    roles: list[Role] | None = None
    active: bool | None = None
    password: Password | None = Field(None, description="Set a new password (an admin reset).")
    language: Literal["zh", "en"] | None = None


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str
    new_password: Password


class UserOut(BaseModel):
    username: str
    display_name: str
    org_code: str | None
    roles: list[Role]
    active: bool
    language: str | None
    created_at: dt.datetime
    last_login_at: dt.datetime | None


class ClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    org_code: Code
    system_code: Code | None = None


class ClientUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    active: bool | None = None


class ClientOut(BaseModel):
    client_id: str
    name: str
    org_code: str
    system_code: str | None
    active: bool
    created_at: dt.datetime
    last_used_at: dt.datetime | None


class ClientWithSecret(ClientOut):
    client_secret: str = Field(description="Shown once; only its hash is kept.")


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class WhoAmI(BaseModel):
    kind: str
    name: str
    org_code: str | None
    roles: list[Role]
    system_id: int | None


def org_out(org: Organisation) -> OrgOut:
    return OrgOut(
        code=org.code,
        name_zh=org.name_zh,
        name_en=org.name_en,
        kind=org.kind,
        parent_code=org.parent.code if org.parent else None,
        region_code=org.region_code,
        credit_code=org.credit_code,
        active=org.active,
        created_at=org.created_at,
    )


def system_out(system: InformationSystem) -> SystemOut:
    return SystemOut(
        org_code=system.org.code,
        code=system.code,
        name=system.name,
        description=system.description,
        active=system.active,
        created_at=system.created_at,
    )


def user_out(user: User) -> UserOut:
    return UserOut(
        username=user.username,
        display_name=user.display_name,
        org_code=user.org.code if user.org else None,
        roles=sorted(user.roles),
        active=user.active,
        language=user.language,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


def client_out(client: ApiClient) -> ClientOut:
    return ClientOut(
        client_id=client.client_id,
        name=client.name,
        org_code=client.org.code,
        system_code=client.system.code if client.system else None,
        active=client.active,
        created_at=client.created_at,
        last_used_at=client.last_used_at,
    )
