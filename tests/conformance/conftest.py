from __future__ import annotations

import sys
from pathlib import Path

# make_vectors.py lives here; the native build helpers live in tests/native (no __init__.py files).
_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
sys.path.insert(0, str(_HERE.parent / "native"))
