"""base58btc, the Bitcoin alphabet that multibase prefix ``z`` names (did:key uses it).

Hand-written because it is a dozen lines over Python's integers; a dependency would add more
surface than it saves. Leading zero bytes are encoded as leading ``1`` characters, so the
encoding is a bijection between byte strings and base58 strings without superfluous ``1``s.
"""

from __future__ import annotations

__all__ = ["ALPHABET", "b58decode", "b58encode"]

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {ch: i for i, ch in enumerate(ALPHABET)}
#: longest text accepted by the decoder (the decoder is quadratic; did:key values are ~50 chars)
MAX_DECODE_CHARS = 4096


def b58encode(data: bytes) -> str:
    """The base58btc text of ``data``."""
    n = int.from_bytes(data, "big")
    digits: list[str] = []
    while n:
        n, r = divmod(n, 58)
        digits.append(ALPHABET[r])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    """The bytes ``text`` encodes; ``ValueError`` names the first character outside the alphabet."""
    if len(text) > MAX_DECODE_CHARS:
        raise ValueError(f"base58btc text of {len(text)} characters is too long")
    n = 0
    for pos, ch in enumerate(text):
        digit = _INDEX.get(ch)
        if digit is None:
            raise ValueError(f"{ch!r} at position {pos} is not a base58btc character")
        n = n * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + n.to_bytes((n.bit_length() + 7) // 8, "big")
