"""The audit ledger — 审计: a tamper-evident record of every use of shared data and decision."""
