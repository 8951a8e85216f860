from __future__ import annotations

import sys
from pathlib import Path

# The hand-built plans live next to the tests (the folder has no __init__.py).
sys.path.insert(0, str(Path(__file__).resolve().parent))
