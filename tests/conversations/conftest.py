"""The conversation suite uses the end-to-end stack fixture (tests/e2e/conftest.py)."""

from tests.e2e.conftest import running

__all__ = ["running"]
