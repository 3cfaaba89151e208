"""`haihe demo`: build a synthetic city, register its members and accounts, ready to serve."""

from __future__ import annotations

from haihe.core.settings import Settings

DEFAULT_PERSONS = 100_000


def run_demo(settings: Settings, *, persons: int, seed: int) -> None:
    """Build the demo installation in ``settings.data_dir``."""
    raise NotImplementedError("demo is being assembled in this session")
