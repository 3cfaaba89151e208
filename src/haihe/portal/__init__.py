"""The open-data portal — 统一开放平台: open datasets served through a CKAN-compatible API."""
