"""Parameters of the shared synthetic city used by the synth tests (see conftest.py)."""

from __future__ import annotations

from datetime import date

PERSONS = 8_000
SEED = 7
AS_OF = date(2026, 11, 1)
