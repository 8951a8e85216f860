"""The governance ledger: signed, canonical entries in an append-only file under an RFC 6962 tree.

See ``docs/ledger.md``.
"""

from __future__ import annotations

from catopt_dsl.ledger.entry import Entry, EntryError, SignedEntry, TreeHead
from catopt_dsl.ledger.ledger import (
    Ledger,
    LedgerDamagedError,
    LedgerError,
    Problem,
    VerifyReport,
)
from catopt_dsl.ledger.merkle import (
    MerkleTree,
    ProofError,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "Entry",
    "EntryError",
    "Ledger",
    "LedgerDamagedError",
    "LedgerError",
    "MerkleTree",
    "Problem",
    "ProofError",
    "SignedEntry",
    "TreeHead",
    "VerifyReport",
    "verify_consistency",
    "verify_inclusion",
]
