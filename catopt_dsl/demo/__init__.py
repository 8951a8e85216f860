"""Demonstrations: a simulated cross-domain fleet re-planned hourly (``catoptc demo fleet``) and
hardware-in-the-loop validation of planned against achieved throughput (``catoptc demo hil``)."""

from __future__ import annotations
