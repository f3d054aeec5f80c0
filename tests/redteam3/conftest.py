"""Red team 3: attacks on the live document (issue 15) and streaming executions (issue 14).

These tests target routes that exist once the `live` and `streaming` branches are merged;
they reuse those branches' real-process fixtures (tests/live/conftest.py, tests/support/live.py,
tests/support/yclient.py). Each test names its finding id (RT3-…) and whether it passed
against the branch when written.
"""

from __future__ import annotations

from tests.live.conftest import cluster, embedded, embedded_api  # noqa: F401
