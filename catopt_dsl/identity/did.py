"""did:key for Ed25519: the DID *is* the public key, so resolving it needs no registry.

A DID is ``did:key:z`` + base58btc(multicodec ``ed25519-pub`` (varint 0xed, i.e. bytes ``0xed
0x01``) + the 32-byte public key), so every Ed25519 did:key starts ``did:key:z6Mk``. The DID
document is built by the did:key method specification's *Document Creation Algorithm*
(w3c-ccg/did-method-key): one signature verification method, referenced from
``authentication``, ``assertionMethod``, ``capabilityInvocation`` and ``capabilityDelegation``,
and, when encryption key derivation is enabled, an X25519 key agreement method derived from the
Ed25519 key with the birational map u = (1 + y) / (1 - y) (RFC 7748 §4.1).

Only the canonical three-part form ``did:key:<multibase>`` is accepted: ownership is compared
byte for byte on the wire, so one key must have one spelling.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import Any

from catopt_dsl.identity.base58 import b58decode, b58encode

__all__ = [
    "DID_PREFIX",
    "ED25519_PUB_CODEC",
    "PUBLIC_KEY_FORMATS",
    "X25519_PUB_CODEC",
    "DidError",
    "did_from_public_key",
    "ed25519_to_x25519",
    "multibase_ed25519",
    "public_key_from_did",
    "resolve",
    "validate_did",
]

DID_PREFIX = "did:key:"
#: multicodec ``ed25519-pub`` (0xed) and ``x25519-pub`` (0xec) as unsigned varints
ED25519_PUB_CODEC = b"\xed\x01"
X25519_PUB_CODEC = b"\xec\x01"
_KEY_BYTES = 32

# Curve25519 / edwards25519 constants (RFC 8032 §5.1, RFC 7748 §4.1).
_P = 2**255 - 19
_D = (-121665 * pow(121666, -1, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)

DEFAULT_CONTEXT = "https://www.w3.org/ns/did/v1"
#: verification-method type -> the JSON-LD context the Context Creation Algorithm adds for it.
#: The 2018/2019 suites are the spec's "experimental" types; its published test vectors use them.
_TYPE_CONTEXT: dict[str, str | None] = {
    "Ed25519VerificationKey2020": "https://w3id.org/security/suites/ed25519-2020/v1",
    "X25519KeyAgreementKey2020": "https://w3id.org/security/suites/x25519-2020/v1",
    "JsonWebKey2020": "https://w3id.org/security/suites/jws-2020/v1",
    "Ed25519VerificationKey2018": "https://w3id.org/security/suites/ed25519-2018/v1",
    "X25519KeyAgreementKey2019": "https://w3id.org/security/suites/x25519-2019/v1",
    "Multikey": None,  # the spec defines no context for Multikey
}
#: publicKeyFormat -> (signature method type, key agreement method type)
PUBLIC_KEY_FORMATS: dict[str, tuple[str, str]] = {
    "Ed25519VerificationKey2020": ("Ed25519VerificationKey2020", "X25519KeyAgreementKey2020"),
    "Multikey": ("Multikey", "Multikey"),
    "JsonWebKey2020": ("JsonWebKey2020", "JsonWebKey2020"),
    "Ed25519VerificationKey2018": ("Ed25519VerificationKey2018", "X25519KeyAgreementKey2019"),
}
_EXPERIMENTAL = {"Ed25519VerificationKey2018"}


class DidError(ValueError):
    """A malformed or unsupported DID; ``code`` is the did:key spec's error name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _on_curve(key: bytes) -> bool:
    """True if ``key`` decodes to a point of edwards25519 (RFC 8032 §5.1.3)."""
    y = int.from_bytes(key, "little") & ((1 << 255) - 1)
    sign = key[31] >> 7
    if y >= _P:
        return False
    x2 = (y * y - 1) * pow(_D * y * y + 1, -1, _P) % _P
    if x2 == 0:
        return sign == 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    return (x * x - x2) % _P == 0


def multibase_ed25519(public_key: bytes) -> str:
    """``z`` + base58btc(0xed 0x01 + key): the method-specific id of the key's did:key."""
    if len(public_key) != _KEY_BYTES:
        raise DidError("invalidPublicKeyLength", f"an Ed25519 public key is 32 bytes, got {len(public_key)}")
    return "z" + b58encode(ED25519_PUB_CODEC + bytes(public_key))


def did_from_public_key(public_key: bytes) -> str:
    """The did:key of a raw 32-byte Ed25519 public key."""
    return DID_PREFIX + multibase_ed25519(public_key)


def _decode_multibase(value: str) -> tuple[bytes, bytes]:
    """(multicodec varint bytes, raw key bytes) of a ``z``-multibase value."""
    if not value.startswith("z"):
        raise DidError("invalidDid", "the multibase value must start with `z` (base58btc)")
    try:
        raw = b58decode(value[1:])
    except ValueError as exc:
        raise DidError("invalidDid", f"the multibase value is not base58btc: {exc}") from None
    end = 0
    while end < len(raw) and raw[end] & 0x80:  # unsigned varint: continuation bit set
        end += 1
    if end >= len(raw) or end >= 9:
        raise DidError("invalidDid", "the multibase value does not start with a multicodec varint")
    return raw[: end + 1], raw[end + 1 :]


def public_key_from_did(did: str) -> bytes:
    """The 32-byte Ed25519 public key a did:key encodes; :class:`DidError` says what is wrong."""
    if not isinstance(did, str):
        raise DidError("invalidDid", "a DID must be text")
    return _decode_did(did)


# A plan has a handful of DIDs, each checked on every frame or entry: decode each once (the
# curve check costs two modular exponentiations). Failures raise, and are not cached.
@lru_cache(maxsize=4096)
def _decode_did(did: str) -> bytes:
    if not did.startswith(DID_PREFIX):
        if did.startswith("did:"):
            method = did.split(":")[1] if did.count(":") >= 2 else ""
            raise DidError("methodNotSupported", f"only did:key is supported, not did:{method}")
        raise DidError("invalidDid", "a DID starts with `did:key:`")
    rest = did[len(DID_PREFIX) :]
    if ":" in rest:
        raise DidError("invalidDid", "use the canonical form did:key:<multibase> (no version or other parts)")
    if "#" in rest or "?" in rest or "/" in rest:
        raise DidError("invalidDid", "a DID has no fragment, query or path (that is a DID URL)")
    codec, key = _decode_multibase(rest)
    if codec != ED25519_PUB_CODEC:
        raise DidError(
            "invalidPublicKeyType",
            f"multicodec 0x{int.from_bytes(codec[::-1], 'big'):x} is not ed25519-pub (0xed); only Ed25519 keys are supported",
        )
    if len(key) != _KEY_BYTES:
        raise DidError("invalidPublicKeyLength", f"an Ed25519 public key is 32 bytes, this one has {len(key)}")
    if not _on_curve(key):
        raise DidError("invalidPublicKey", "the key is not a point on the Ed25519 curve")
    if multibase_ed25519(key) != rest:
        raise DidError("invalidDid", "non-canonical base58btc encoding")
    return key


def validate_did(text: str) -> str | None:
    """``None`` if ``text`` is a well-formed Ed25519 did:key, else a one-line reason (for diagnostics)."""
    try:
        public_key_from_did(text)
    except DidError as exc:
        return str(exc)
    return None


def ed25519_to_x25519(public_key: bytes) -> bytes:
    """The X25519 public key (Montgomery u) of an Ed25519 public key (RFC 7748 §4.1 map)."""
    y = int.from_bytes(public_key, "little") & ((1 << 255) - 1)
    if (1 - y) % _P == 0:
        raise DidError("invalidPublicKey", "the identity point has no X25519 counterpart")
    u = (1 + y) * pow(1 - y, -1, _P) % _P
    return u.to_bytes(_KEY_BYTES, "little")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _method(did: str, vm_type: str, codec: bytes, key: bytes, crv: str) -> dict[str, Any]:
    multibase = "z" + b58encode(codec + key)
    vm: dict[str, Any] = {"id": f"{did}#{multibase}", "type": vm_type, "controller": did}
    if vm_type in ("Ed25519VerificationKey2018", "X25519KeyAgreementKey2019"):
        vm["publicKeyBase58"] = b58encode(key)
    elif vm_type == "JsonWebKey2020":
        vm["publicKeyJwk"] = {"kty": "OKP", "crv": crv, "x": _b64url(key)}
    else:
        vm["publicKeyMultibase"] = multibase
    return vm


def resolve(
    did: str,
    *,
    public_key_format: str = "Ed25519VerificationKey2020",
    enable_encryption_key_derivation: bool = True,
    enable_experimental_public_key_types: bool = False,
) -> dict[str, Any]:
    """The DID document of an Ed25519 did:key (the spec's Document Creation Algorithm).

    ``public_key_format`` is one of :data:`PUBLIC_KEY_FORMATS`; the 2018 suite is experimental
    (the spec's test vectors use it) and needs ``enable_experimental_public_key_types``.
    """
    if public_key_format not in PUBLIC_KEY_FORMATS:
        raise DidError("unsupportedPublicKeyType", f"unknown public key format {public_key_format!r}")
    if public_key_format in _EXPERIMENTAL and not enable_experimental_public_key_types:
        raise DidError("invalidPublicKeyType", f"{public_key_format} is experimental; enable experimental types")
    key = public_key_from_did(did)
    sig_type, enc_type = PUBLIC_KEY_FORMATS[public_key_format]
    sig = _method(did, sig_type, ED25519_PUB_CODEC, key, "Ed25519")
    methods = [sig]
    doc: dict[str, Any] = {"@context": [], "id": did, "verificationMethod": methods}
    for relation in ("authentication", "assertionMethod", "capabilityInvocation", "capabilityDelegation"):
        doc[relation] = [sig["id"]]
    if enable_encryption_key_derivation:
        enc = _method(did, enc_type, X25519_PUB_CODEC, ed25519_to_x25519(key), "X25519")
        methods.append(enc)
        doc["keyAgreement"] = [enc["id"]]
    context = [DEFAULT_CONTEXT]
    for vm in methods:
        url = _TYPE_CONTEXT[vm["type"]]
        if url is not None and url not in context:
            context.append(url)
    doc["@context"] = context
    return doc
