"""The attacker's-eye regression tests of issue 16, one file per numbered finding.

The API fixtures (`client`, `admin`, `web`) are the API tests'; the real stack (`running`) is
the end-to-end tests'.
"""

from __future__ import annotations

from tests.api.conftest import WebChat, admin, client, db, web  # noqa: F401 - fixtures
from tests.e2e.conftest import Running, conversation_id, running  # noqa: F401 - fixtures
