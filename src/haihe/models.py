"""Every domain's tables, imported together for Alembic and for tests that build the schema."""

from __future__ import annotations


def import_all_models() -> None:
    """Import each domain's models module so that Base.metadata knows every table."""
    import haihe.audit.models  # noqa: F401
    import haihe.catalogue.models  # noqa: F401
    import haihe.core.calendar  # noqa: F401
    import haihe.core.jobs  # noqa: F401
    import haihe.core.outbox  # noqa: F401
    import haihe.exchange.models  # noqa: F401
    import haihe.governance.models  # noqa: F401
    import haihe.orgs.models  # noqa: F401
    import haihe.portal.models  # noqa: F401
    import haihe.verification.models  # noqa: F401
