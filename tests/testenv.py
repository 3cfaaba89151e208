"""Where the test services are: shared by conftest.py and the tests that need a URL themselves."""

from __future__ import annotations

import os

PG_ADMIN_URL = os.environ.get(
    "HAIHE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
