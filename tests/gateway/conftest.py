from __future__ import annotations

import sys
from pathlib import Path

# the QuickFIX initiator the end-to-end gateway tests use as the customer
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))
