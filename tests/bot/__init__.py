"""Bot-side tests run without the app's conftest: the run's instant is set here instead (tests/calendar.py)."""

import os

from tests.calendar import DEFAULT

os.environ.setdefault("TEST_CLOCK", DEFAULT)
