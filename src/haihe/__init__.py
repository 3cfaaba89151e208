"""Haihe (海河): a city's platform for government data sharing, exchange and open data."""

__version__ = "0.1.0"
