"""A resident's view — 我的数据使用记录: which departments used records about me, when, why.

Entries name the persons whose records they used by keyed pseudonyms (subjects), or point at a
batch's subject set (``subject_sets``); a resident who linked an identity (``haihe users
link-identity``) carries that pseudonym as ``Principal.subject`` and sees exactly the entries
that name it or whose set holds it — including sets still waiting to be indexed.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from haihe.audit import repository as repo
from haihe.audit import subject_sets
from haihe.audit.models import AuditEntry
from haihe.core.auth import Principal
from haihe.core.errors import Forbidden
from haihe.core.settings import Settings

MAX_PAGE = 200


def uses_of_my_data(
    session: Session,
    *,
    actor: Principal,
    settings: Settings,
    before_id: int | None = None,
    limit: int = 50,
) -> Sequence[AuditEntry]:
    """Entries that used records about the signed-in user, newest first (none if unlinked)."""
    if actor.kind != "user":
        raise Forbidden("only a signed-in person has records about themselves")
    if actor.subject is None:
        return []
    pending = subject_sets.pending_sets_holding(session, settings, actor.subject)
    return repo.entries_about(
        session,
        actor.subject,
        pending_sets=pending,
        before_id=before_id,
        limit=min(limit, MAX_PAGE),
    )
