"""The resource catalogue (政务信息资源目录)."""
