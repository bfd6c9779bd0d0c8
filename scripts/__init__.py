"""Operational scripts: the stack supervisor, secrets, demo data."""
