"""catopt_dsl: the catoptc compiler and runtime for distributed optimisation plans."""

from __future__ import annotations

__version__ = "0.1.0"
