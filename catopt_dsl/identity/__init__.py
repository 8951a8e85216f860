"""Identities: Ed25519 keys named by did:key DIDs, signatures, and object ownership.

``did`` (the did:key codec, validation and DID documents) needs only the standard library;
``keys`` (signing) needs the ``cryptography`` package. See ``docs/identity.md``.
"""

from __future__ import annotations

from catopt_dsl.identity.did import (
    DidError,
    did_from_public_key,
    ed25519_to_x25519,
    public_key_from_did,
    resolve,
    validate_did,
)
from catopt_dsl.identity.did import resolve as resolve_did
from catopt_dsl.identity.keys import (
    Identity,
    IdentityError,
    load_keys,
    verify_signature,
)
from catopt_dsl.identity.owners import Owners, OwnersError

__all__ = [
    "DidError",
    "Identity",
    "IdentityError",
    "Owners",
    "OwnersError",
    "did_from_public_key",
    "ed25519_to_x25519",
    "load_keys",
    "public_key_from_did",
    "resolve",
    "resolve_did",
    "validate_did",
    "verify_signature",
]
