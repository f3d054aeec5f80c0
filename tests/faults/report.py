"""What the fault tests measured, for docs/DEPLOYMENT.md's failure table.

With `CODEROOM_FAULT_REPORT=path` set (`make test-faults` sets it), each fault test appends
one JSON line: the fault, the status codes clients saw, and how long recovery took.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def record(fault: str, **measured: Any) -> None:
    path = os.environ.get("CODEROOM_FAULT_REPORT")
    if path:
        with Path(path).open("a") as out:
            out.write(json.dumps({"fault": fault, **measured}, sort_keys=True) + "\n")
