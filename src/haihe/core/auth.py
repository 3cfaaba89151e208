"""Who is calling: roles and the authenticated principal, shared by every domain.

The principal is resolved by an authenticator that the app wires in (orgs implements it), so a
domain below orgs (audit) can check roles without importing orgs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class Role(StrEnum):
    """Roles a user can hold — 角色."""

    PLATFORM_ADMIN = "platform_admin"  # 平台管理员
    ORG_ADMIN = "org_admin"  # 单位管理员
    OPERATOR = "operator"  # 业务操作员
    AUDITOR = "auditor"  # 审计员
    GRID_WORKER = "grid_worker"  # 网格员
    OFFICER = "officer"  # 执法/经办人员
    CARE_OPERATOR = "care_operator"  # 养老服务人员
    RESIDENT = "resident"  # 居民


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a user (console or token) or an API client acting for a system."""

    kind: Literal["user", "client", "system"]
    id: int
    name: str
    org_id: int | None
    org_code: str | None
    roles: frozenset[Role] = field(default_factory=frozenset)
    system_id: int | None = None
    language: str | None = None
    # A resident's keyed pseudonym (the ledger's subject token), when the user linked an identity.
    subject: str | None = None

    def has(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def is_platform_admin(self) -> bool:
        return Role.PLATFORM_ADMIN in self.roles

    def admin_of(self, org_id: int | None) -> bool:
        """True for the platform admin, or an org admin of ``org_id``."""
        if self.is_platform_admin:
            return True
        return org_id is not None and self.org_id == org_id and Role.ORG_ADMIN in self.roles


def system_principal(name: str = "cli") -> Principal:
    """The principal of a trusted local command (the machine's operator): platform admin rights."""
    return Principal(
        kind="system",
        id=0,
        name=name,
        org_id=None,
        org_code=None,
        roles=frozenset({Role.PLATFORM_ADMIN}),
    )
