"""did:key for Ed25519 against the did:key method specification's published test vectors.

Vectors: w3c-ccg/did-method-key ``test-vectors/ed25519-x25519.json`` (seeds 0..4: the DID, the
Ed25519 public key, the derived X25519 key pair and the full DID document in the 2018/2019
suites), the specification's JsonWebKey2020 vector and its example document (2020 suites), plus
RFC 8032 §7.1 test 1 for the signature primitive.
"""

from __future__ import annotations

import hashlib

import pytest

from catopt_dsl.identity.base58 import b58decode, b58encode
from catopt_dsl.identity.did import (
    DidError,
    did_from_public_key,
    ed25519_to_x25519,
    public_key_from_did,
    resolve,
    validate_did,
)
from catopt_dsl.identity.keys import Identity, verify_signature

# seed (hex) -> (did, Ed25519 publicKeyBase58, X25519 key agreement multibase id,
#                X25519 publicKeyBase58, X25519 privateKeyBase58)
SPEC_VECTORS = {
    "00" * 32: (
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
        "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS",
        "z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW",
        "7By6kV2t2d188odEM4ExAve1UithKT6dLva4dwsDT3ak",
        "6QN8DfuN9hjgHgPvLXqgzqYE3jRRGRrmJQZkd5tL8paR",
    ),
    "00" * 31 + "01": (
        "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG",
        "6ASf5EcmmEHTgDJ4X4ZT5vT6iHVJBXPg5AN5YoTCpGWt",
        "z6LSrHyXiPBhUbvPUtyUCdf32sniiMGPTAesgHrtEa4FePtr",
        "FcoNC5NqP9CePWbhfz95iHaEsCjGkZUioK9Ck7Qiw286",
        "HBTcN2MrXNRj9xF9oi8QqYyuEPv3JLLjQKuEgW9oxVKP",
    ),
    "00" * 31 + "02": (
        "did:key:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf",
        "8pM1DN3RiT8vbom5u1sNryaNT1nyL8CTTW3b5PwWXRBH",
        "z6LSkkqoZRC34AEpbkhZCqLDcHQVAxuLpQ7kC8XCXMVUfvjE",
        "A5fe37PAxhX5WNKngBpGHhC1KpNE7nwbK9oX2tqwxYxU",
        "ACa4PPJ1LnPNq1iwS33V3Akh7WtnC71WkKFZ9ccM6sX2",
    ),
    "00" * 31 + "03": (
        "did:key:z6MkvqoYXQfDDJRv8L4wKzxYeuKyVZBfi9Qo6Ro8MiLH3kDQ",
        "HPYVwAQmskwT1qEEeRzhoomyfyupJGASQQtCXSNG8XS2",
        "z6LSiUo6AEDat8Ze4nQzDo67SGuHLLwsUGkxndHGUjsywHow",
        "7ocvdvQinfqtyQ3Dh9aA7ggoVCQkmfaoueZazHETDv3B",
        "FZrzd1osCnbK6y6MJzMBW1RcVfL524sNKhSbqRwMuwHT",
    ),
    "00" * 31 + "04": (
        "did:key:z6MkwW6aqMnjgrhJXFUko3NnZPGzVpkNzhYK7yEhnsibmLwL",
        "J3qYF7YJMKCqQke47UQwiHizgFUXapHxRxKmxbkar89x",
        "z6LSrGb3qm4xMCEBjvwkLb2WEcXfTM94Tu1RyGCbT5wbg8i9",
        "FbQtKTG6FjWSeYZyowWYv2KBcCbwmHqH6HUuxdJ4xkwP",
        "8Zybi2bqQ8YB4uPm3iy2rkDCmbB4wkG2Y2ig5YAkgNdg",
    ),
}

# The published DID document of seed 0 (2018/2019 suites), key for key.
SEED0_DOCUMENT = {
    "@context": [
        "https://www.w3.org/ns/did/v1",
        "https://w3id.org/security/suites/ed25519-2018/v1",
        "https://w3id.org/security/suites/x25519-2019/v1",
    ],
    "id": "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
    "verificationMethod": [
        {
            "id": "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp#z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
            "type": "Ed25519VerificationKey2018",
            "controller": "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
            "publicKeyBase58": "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS",
        },
        {
            "id": "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp#z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW",
            "type": "X25519KeyAgreementKey2019",
            "controller": "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
            "publicKeyBase58": "7By6kV2t2d188odEM4ExAve1UithKT6dLva4dwsDT3ak",
        },
    ],
    "assertionMethod": [
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp#z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
    ],
    "authentication": [
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp#z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
    ],
    "capabilityInvocation": [
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp#z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
    ],
    "capabilityDelegation": [
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp#z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
    ],
    "keyAgreement": [
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp#z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW"
    ],
}


@pytest.mark.parametrize("seed_hex", sorted(SPEC_VECTORS))
def test_spec_vectors_seed_to_did_and_keys(seed_hex: str) -> None:
    did, pub58, x_id, x_pub58, x_priv58 = SPEC_VECTORS[seed_hex]
    ident = Identity.from_seed(bytes.fromhex(seed_hex))
    assert ident.did == did
    assert b58encode(ident.public_key) == pub58
    assert public_key_from_did(did) == b58decode(pub58)
    assert did_from_public_key(b58decode(pub58)) == did
    assert validate_did(did) is None
    # The X25519 key agreement key, by the birational map from the public key alone...
    assert b58encode(ed25519_to_x25519(ident.public_key)) == x_pub58
    # ...agrees with X25519 on the private key the vectors derive (clamped SHA-512 of the seed).
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    h = bytearray(hashlib.sha512(bytes.fromhex(seed_hex)).digest()[:32])
    h[0] &= 248
    h[31] = (h[31] & 127) | 64
    assert b58encode(bytes(h)) == x_priv58
    x_pub = X25519PrivateKey.from_private_bytes(bytes(h)).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert b58encode(x_pub) == x_pub58
    # The key agreement method's id in the 2018 document
    doc = resolve(did, public_key_format="Ed25519VerificationKey2018", enable_experimental_public_key_types=True)
    assert doc["keyAgreement"] == [f"{did}#{x_id}"]
    assert doc["verificationMethod"][1]["publicKeyBase58"] == x_pub58


def test_seed0_document_equals_the_published_one() -> None:
    did = SEED0_DOCUMENT["id"]
    assert isinstance(did, str)
    doc = resolve(did, public_key_format="Ed25519VerificationKey2018", enable_experimental_public_key_types=True)
    assert doc == SEED0_DOCUMENT


def test_2020_document_follows_the_creation_algorithm() -> None:
    # The specification's example DID and its derived key agreement key.
    did = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
    doc = resolve(did)
    vm_id = f"{did}#z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
    ka_id = f"{did}#z6LSj72tK8brWgZja8NLRwPigth2T9QRiG1uH9oKZuKjdh9p"
    assert doc["@context"] == [
        "https://www.w3.org/ns/did/v1",
        "https://w3id.org/security/suites/ed25519-2020/v1",
        "https://w3id.org/security/suites/x25519-2020/v1",
    ]
    assert doc["verificationMethod"][0] == {
        "id": vm_id,
        "type": "Ed25519VerificationKey2020",
        "controller": did,
        "publicKeyMultibase": "z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
    }
    assert doc["verificationMethod"][1]["publicKeyMultibase"] == "z6LSj72tK8brWgZja8NLRwPigth2T9QRiG1uH9oKZuKjdh9p"
    for rel in ("authentication", "assertionMethod", "capabilityInvocation", "capabilityDelegation"):
        assert doc[rel] == [vm_id]
    assert doc["keyAgreement"] == [ka_id]
    no_ka = resolve(did, enable_encryption_key_derivation=False)
    assert "keyAgreement" not in no_ka and len(no_ka["verificationMethod"]) == 1
    assert no_ka["@context"] == ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/suites/ed25519-2020/v1"]


def test_jwk_vector_and_multikey_context() -> None:
    did = SPEC_VECTORS["00" * 32][0]
    doc = resolve(did, public_key_format="JsonWebKey2020")
    assert doc["verificationMethod"][0]["publicKeyJwk"] == {
        "kty": "OKP", "crv": "Ed25519", "x": "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik"}
    assert doc["verificationMethod"][1]["publicKeyJwk"] == {
        "kty": "OKP", "crv": "X25519", "x": "W_Vcc7guviK-gPNDBmevVw-uJVamQV5rMNQGUwCqlH0"}
    assert doc["@context"] == ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/suites/jws-2020/v1"]
    assert resolve(did, public_key_format="Multikey")["@context"] == ["https://www.w3.org/ns/did/v1"]
    with pytest.raises(DidError) as exc:
        resolve(did, public_key_format="Ed25519VerificationKey2018")  # experimental, not enabled
    assert exc.value.code == "invalidPublicKeyType"
    with pytest.raises(DidError) as exc:
        resolve(did, public_key_format="RsaVerificationKey2018")
    assert exc.value.code == "unsupportedPublicKeyType"


def test_another_published_document() -> None:
    # A DID document published with ACA-Py's tests (2018 suite, embedded key agreement key).
    did = "did:key:z6MkmjY8GnV5i9YTDtPETC2uUAW6ejw3nk5mXF5yci5ab7th"
    assert b58encode(public_key_from_did(did)) == "8HH5gYEeNc3z7PYXmd54d4x6qAfCNrqQqEB3nS7Zfu7K"
    assert b58encode(ed25519_to_x25519(public_key_from_did(did))) == "79CXkde3j8TNuMXxPdV7nLUrT2g7JAEjH5TreyVY7GEZ"
    doc = resolve(did)
    assert doc["keyAgreement"] == [f"{did}#z6LShpNhGwSupbB7zjuivH156vhLJBDDzmQtA4BY9S94pe1K"]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("did:key:z6LSeu9HkTHSfLLeUs2nnzUSNedgDUevfNQgQjQC23ZCit6F", "invalidPublicKeyType"),  # an X25519 did:key
        ("did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme", "invalidPublicKeyType"),  # secp256k1
        ("did:web:example.com", "methodNotSupported"),
        ("did:key:6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp", "invalidDid"),  # no multibase prefix
        ("did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooW0", "invalidDid"),  # 0 is not base58
        ("did:key:z" + b58encode(b"\xed\x01" + bytes(range(31))), "invalidPublicKeyLength"),  # 31-byte key
        ("did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDoo", "invalidPublicKeyType"),  # cut: prefix garbled
        ("did:key:1:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp", "invalidDid"),  # versioned form
        ("did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp#frag", "invalidDid"),  # a DID URL
        ("did:key:z", "invalidDid"),
        ("z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp", "invalidDid"),
        ("", "invalidDid"),
    ],
)
def test_malformed_dids_are_rejected_with_the_spec_error(text: str, code: str) -> None:
    with pytest.raises(DidError) as exc:
        public_key_from_did(text)
    assert exc.value.code == code
    reason = validate_did(text)
    assert reason is not None and reason == str(exc.value)


def test_a_key_off_the_curve_is_rejected() -> None:
    # y = 2 has no x on edwards25519 (x^2 = 3 / (4d + 1) is not a square mod p).
    bad = (2).to_bytes(32, "little")
    did = "did:key:z" + b58encode(b"\xed\x01" + bad)
    assert "not a point on the Ed25519 curve" in (validate_did(did) or "")
    ok = "did:key:z" + b58encode(b"\xed\x01" + (1).to_bytes(32, "little"))  # y = 1: the neutral point
    assert validate_did(ok) is None


def test_base58_round_trip_and_leading_zeros() -> None:
    for raw in (b"", b"\0", b"\0\0\x01", bytes(range(40)), b"\xff" * 33):
        assert b58decode(b58encode(raw)) == raw
    assert b58encode(b"\0\0\x01") == "112"
    assert b58encode(b"hello world") == "StV1DL6CwTryKyV"
    with pytest.raises(ValueError, match="position 3"):
        b58decode("abcO")


def test_rfc8032_signature_vector_and_verification() -> None:
    ident = Identity.from_seed(bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
    assert ident.public_key.hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    sig = ident.sign(b"", b"")
    assert sig.hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    assert verify_signature(ident.did, sig, b"", b"")
    msg_sig = ident.sign(b"ctx\0", b"message")
    assert verify_signature(ident.did, msg_sig, b"ctx\0", b"message")
    assert not verify_signature(ident.did, msg_sig, b"other\0", b"message")  # domain separation
    assert not verify_signature(ident.did, msg_sig, b"ctx\0", b"messagf")
    flipped = bytes([msg_sig[0] ^ 1]) + msg_sig[1:]
    assert not verify_signature(ident.did, flipped, b"ctx\0", b"message")
    other = Identity.from_seed(bytes(32))
    assert not verify_signature(other.did, msg_sig, b"ctx\0", b"message")  # a swapped public key
    assert not verify_signature("did:key:zbad", msg_sig, b"ctx\0", b"message")
    assert not verify_signature(ident.did, msg_sig[:63], b"ctx\0", b"message")
