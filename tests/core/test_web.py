"""The HTTP edge's transaction: committed before the response leaves, rolled back on error."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from factories import bearer, make_user
from haihe.core.auth import Role


def test_a_write_is_committed_before_its_response_is_sent(
    app: Any, session_factory: sessionmaker[Session]
) -> None:
    """A client that follows a redirect (or reads right after a 201) must see what it wrote."""
    with session_factory() as s:
        make_user(s, Role.PLATFORM_ADMIN, username="root1")
        s.commit()
    order: list[str] = []

    def committed(_session: Session) -> None:
        order.append("commit")

    async def recorded(scope: Any, receive: Any, send: Any) -> None:
        async def send_and_note(message: Any) -> None:
            if message["type"] == "http.response.start":
                order.append("response")
            await send(message)

        await app(scope, receive, send_and_note)

    with TestClient(recorded) as client:
        headers = bearer(client, username="root1")
        event.listen(app.state.session_factory, "after_commit", committed)
        try:
            order.clear()
            body = {"code": "WEB1", "name_zh": "新单位", "kind": "municipal_department"}
            r = client.post("/api/v1/orgs", json=body, headers=headers)
        finally:
            event.remove(app.state.session_factory, "after_commit", committed)
    assert r.status_code == 201, r.text
    assert "commit" in order
    assert order.index("commit") < order.index("response"), order
