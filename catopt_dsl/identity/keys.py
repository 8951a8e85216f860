"""Ed25519 identities: a private key, its did:key, signing, verification, and the key file.

Key file (JSON, UTF-8, created with mode 0600 and never overwritten)::

    {"type": "catopt-identity", "version": 1,
     "did": "did:key:z6Mk...",
     "privateKeyMultibase": "z3u2..."}

``privateKeyMultibase`` is ``z`` + base58btc(multicodec ``ed25519-priv`` (varint 0x1300, bytes
``0x80 0x26``) + the 32-byte seed), the Multikey convention. The ``did`` is redundant on purpose:
loading checks it against the key, so a file whose public part was swapped or edited is refused.
A PKCS#8 PEM Ed25519 key (``openssl genpkey -algorithm ed25519``) loads too.

Signatures are RFC 8032 Ed25519 (deterministic: same key and message, same 64 bytes), always over
a domain-separation context followed by the message, so a signature made for one purpose (a
frame, a ledger entry, a tree head) is never valid for another.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)

from catopt_dsl.identity.base58 import b58decode, b58encode
from catopt_dsl.identity.did import (
    DidError,
    did_from_public_key,
    ed25519_to_x25519,
    public_key_from_did,
)

__all__ = [
    "ED25519_PRIV_CODEC",
    "KEY_FILE_TYPE",
    "SIGNATURE_BYTES",
    "Identity",
    "IdentityError",
    "verify_signature",
]

ED25519_PRIV_CODEC = b"\x80\x26"
KEY_FILE_TYPE = "catopt-identity"
SIGNATURE_BYTES = 64
_MAX_KEY_FILE = 64 * 1024


class IdentityError(ValueError):
    """A key file that cannot be used (missing, malformed, mismatched, or in the way)."""


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class Identity:
    """An Ed25519 private key with its did:key. ``repr`` and ``str`` never show the key."""

    __slots__ = ("_key", "did", "public_key")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_key: bytes = _raw_public(key.public_key())
        self.did: str = did_from_public_key(self.public_key)

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def generate(cls) -> Identity:
        """A fresh key from the operating system's CSPRNG."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        """The key whose RFC 8032 private seed is ``seed`` (32 bytes): for tests and test vectors."""
        if len(seed) != 32:
            raise IdentityError(f"an Ed25519 seed is 32 bytes, got {len(seed)}")
        return cls(Ed25519PrivateKey.from_private_bytes(bytes(seed)))

    def seed(self) -> bytes:
        """The 32-byte private seed. Handle with care: whoever has it *is* this identity."""
        return self._key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )

    # Pickling (a Ray actor holds its tenant's key) goes through the seed.
    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return (Identity.from_seed, (self.seed(),))

    def __repr__(self) -> str:
        return f"Identity({self.did})"

    __str__ = __repr__

    # -- signing -------------------------------------------------------------------------------
    def sign(self, context: bytes, message: bytes) -> bytes:
        """Ed25519 signature (64 bytes) over ``context || message``."""
        return self._key.sign(context + message)

    # -- key agreement ---------------------------------------------------------------------------
    def x25519_private(self) -> bytes:
        """The X25519 private key paired with this Ed25519 key: the clamped first half of
        SHA-512(seed) (RFC 8032 §5.1.5), whose public key is the DID document's keyAgreement key."""
        h = bytearray(hashlib.sha512(self.seed()).digest()[:32])
        h[0] &= 248
        h[31] = (h[31] & 127) | 64
        return bytes(h)

    def agree(self, peer_did: str) -> bytes:
        """The X25519 shared secret with ``peer_did``'s keyAgreement key (static Diffie-Hellman)."""
        peer = X25519PublicKey.from_public_bytes(ed25519_to_x25519(public_key_from_did(peer_did)))
        try:
            return X25519PrivateKey.from_private_bytes(self.x25519_private()).exchange(peer)
        except ValueError:
            raise IdentityError(f"{peer_did}: a low-order key; no shared secret") from None

    # -- key file ------------------------------------------------------------------------------
    def to_json(self) -> str:
        seed_mb = "z" + b58encode(ED25519_PRIV_CODEC + self.seed())
        doc = {"type": KEY_FILE_TYPE, "version": 1, "did": self.did, "privateKeyMultibase": seed_mb}
        return json.dumps(doc, indent=2) + "\n"

    def save(self, path: str | Path) -> Path:
        """Write the key file with mode 0600; an existing file is never replaced."""
        path = Path(path)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise IdentityError(f"{path} already exists; refusing to overwrite it") from None
        except OSError as exc:
            raise IdentityError(f"cannot create {path}: {exc.strerror}") from None
        try:
            os.fchmod(fd, 0o600)  # the umask can only remove bits; make the mode exact anyway
            os.write(fd, self.to_json().encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Identity:
        """Read a key file (this module's JSON, or a PKCS#8 PEM Ed25519 key)."""
        path = Path(path)
        try:
            if path.stat().st_size > _MAX_KEY_FILE:
                raise IdentityError(f"{path}: too large to be a key file")
            data = path.read_bytes()
        except FileNotFoundError:
            raise IdentityError(f"{path}: no such key file") from None
        except IsADirectoryError:
            raise IdentityError(f"{path}: is a directory, not a key file") from None
        except OSError as exc:
            raise IdentityError(f"{path}: cannot read: {exc.strerror}") from None
        if data.lstrip().startswith(b"-----BEGIN"):
            return cls._from_pem(path, data)
        return cls._from_json(path, data)

    @classmethod
    def _from_pem(cls, path: Path, data: bytes) -> Identity:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise IdentityError(f"{path}: not an unencrypted PEM private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise IdentityError(f"{path}: the PEM key is not an Ed25519 key")
        return cls(key)

    @classmethod
    def _from_json(cls, path: Path, data: bytes) -> Identity:
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise IdentityError(f"{path}: not a catopt identity file (expected JSON or PEM)") from None
        if not isinstance(doc, dict) or doc.get("type") != KEY_FILE_TYPE:
            raise IdentityError(f"{path}: not a catopt identity file (`type` is not {KEY_FILE_TYPE!r})")
        if doc.get("version") != 1:
            raise IdentityError(f"{path}: identity file version {doc.get('version')!r} is not supported")
        mb = doc.get("privateKeyMultibase")
        if not isinstance(mb, str) or not mb.startswith("z"):
            raise IdentityError(f"{path}: `privateKeyMultibase` must be a base58btc (`z...`) string")
        try:
            raw = b58decode(mb[1:])
        except ValueError as exc:
            raise IdentityError(f"{path}: `privateKeyMultibase`: {exc}") from None
        if raw[:2] != ED25519_PRIV_CODEC or len(raw) != 34:
            raise IdentityError(f"{path}: `privateKeyMultibase` is not an ed25519-priv key (0x1300 + 32 bytes)")
        ident = cls.from_seed(raw[2:])
        if doc.get("did") != ident.did:
            raise IdentityError(
                f"{path}: the file's `did` ({doc.get('did')!r}) does not belong to its private key "
                f"(which is {ident.did}); the file was altered"
            )
        return ident


#: the files a key folder holds: the JSON key files `catoptc identity new` writes, and PEM keys
KEY_FILE_SUFFIXES = (".key", ".pem")


def load_keys(paths: Iterable[str | Path]) -> list[Identity]:
    """Key files, and folders of them (their ``*.key`` and ``*.pem`` files, in name order).

    Each key is filed under the DID it proves (the file's own), so a folder needs no index of who
    is who. A file that is not a usable key is an :class:`IdentityError` (nothing is skipped
    silently: a key left out would only show up as a missing tenant much later); a folder without
    key files too.
    """
    out: list[Identity] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in KEY_FILE_SUFFIXES and p.is_file())
            if not files:
                raise IdentityError(f"{path}: a folder without key files ({', '.join('*' + s for s in KEY_FILE_SUFFIXES)})")
            out.extend(Identity.load(p) for p in files)
        else:
            out.append(Identity.load(path))
    return out


def key_file_mode_warning(path: str | Path) -> str | None:
    """A warning when a key file is readable or writable by group or others (as ssh warns)."""
    try:
        mode = stat.S_IMODE(Path(path).stat().st_mode)
    except OSError:
        return None
    if mode & 0o077:
        return f"{path} has mode {mode:04o}; a private key should be 0600 (chmod 600 {path})"
    return None


@lru_cache(maxsize=4096)
def _public_key(did: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(public_key_from_did(did))


def verify_signature(did: str, signature: bytes, context: bytes, message: bytes) -> bool:
    """True iff ``signature`` is ``did``'s Ed25519 signature over ``context || message``.

    A malformed DID or a signature of the wrong length is simply not valid (False).
    """
    if len(signature) != SIGNATURE_BYTES:
        return False
    try:
        key = _public_key(did)
    except DidError:
        return False
    try:
        key.verify(bytes(signature), context + message)
    except InvalidSignature:
        return False
    return True
