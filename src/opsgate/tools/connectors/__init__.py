"""Connectors: each declares its tools as data and reports its own status."""
