"""Data verification — 数据核验 (数据可用不可见): yes/no answers over other departments' data.

A consumer asks a rule's question about persons and gets a verdict (yes / no / unknown), reason
codes and the source versions consulted — never the providers' rows.
"""
