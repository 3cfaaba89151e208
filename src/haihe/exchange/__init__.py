"""Sharing and exchange — 共享交换: access requests, approvals, grants and the data gateway."""
