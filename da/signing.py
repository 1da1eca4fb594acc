"""BLS signatures (blspy `PopSchemeMPL`): the only module that imports blspy.

Producer header signatures and storage-node attestations, aggregated into DA certificates. Keys
and signatures cross this module as bytes (secret 32, public 48, signature 96). The proof-of-
possession scheme makes aggregates of distinct keys safe against rogue-key attacks only when
every key's possession was proven: today every key is configured by an operator (trust roots,
`--operator`), never learned from the network. A feature that takes keys from the network must
first check a proof of possession (`PopSchemeMPL.pop_prove` / `pop_verify`), added here then.

`verify*` return False for any bad input (malformed bytes included): an outcome, not an exception.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from blspy import G1Element, G2Element, PopSchemeMPL, PrivateKey

from da.errors import KeyFileError

SECRET_KEY_BYTES = 32
PUBLIC_KEY_BYTES = 48
SIGNATURE_BYTES = 96
MIN_SEED_BYTES = 32
KEY_FILE_MODE = 0o600
KEY_FILE_SCHEME = "bls12-381-pop"


@dataclass(frozen=True)
class KeyPair:
    """A BLS key pair. The secret is left out of `repr` so it never lands in a log."""

    secret: bytes = field(repr=False)
    public: bytes

    def __post_init__(self) -> None:
        if len(self.secret) != SECRET_KEY_BYTES:
            raise ValueError(f"secret key must be {SECRET_KEY_BYTES} bytes")
        if len(self.public) != PUBLIC_KEY_BYTES:
            raise ValueError(f"public key must be {PUBLIC_KEY_BYTES} bytes")


def generate_keypair(seed: bytes | None = None) -> KeyPair:
    """A new key pair from `seed` (>= 32 bytes; fresh from `secrets` when None)."""
    if seed is None:
        seed = secrets.token_bytes(MIN_SEED_BYTES)
    if len(seed) < MIN_SEED_BYTES:
        raise ValueError(f"seed must be at least {MIN_SEED_BYTES} bytes")
    secret_key = PopSchemeMPL.key_gen(seed)
    return KeyPair(secret=bytes(secret_key), public=bytes(secret_key.get_g1()))


def public_key(secret: bytes) -> bytes:
    """The 48-byte public key of a 32-byte secret key."""
    return bytes(_secret_key(secret).get_g1())


def write_key_file(
    path: str | os.PathLike[str], keypair: KeyPair, *, overwrite: bool = False
) -> None:
    """Write `keypair` as JSON to a file created with mode 0600 (atomically, synced).

    Raises `KeyFileError` if the file exists and `overwrite` is false, or on any OS error.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise KeyFileError(str(target), "already exists; refusing to overwrite a key")
    document = {
        "scheme": KEY_FILE_SCHEME,
        "secret_key": keypair.secret.hex(),
        "public_key": keypair.public.hex(),
    }
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        _write_private(temporary, (json.dumps(document, indent=2) + "\n").encode())
        if overwrite:
            os.replace(temporary, target)
        else:
            os.link(temporary, target)  # fails if the target appeared meanwhile: never clobber
            os.unlink(temporary)
    except OSError as e:
        temporary.unlink(missing_ok=True)
        raise KeyFileError(str(target), e.strerror or str(e)) from e


def _write_private(path: Path, content: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    try:
        os.fchmod(descriptor, KEY_FILE_MODE)  # the umask may only have narrowed it; be exact
        os.write(descriptor, content)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_key_file(path: str | os.PathLike[str]) -> KeyPair:
    """Read a key file written by `write_key_file`; `KeyFileError` says what is wrong."""
    name = str(path)
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise KeyFileError(name, e.strerror or str(e)) from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise KeyFileError(name, f"not a JSON key file ({e})") from e
    if not isinstance(document, dict) or document.get("scheme") != KEY_FILE_SCHEME:
        raise KeyFileError(name, f"expected a JSON object with scheme {KEY_FILE_SCHEME!r}")
    secret = _hex_field(name, document, "secret_key", SECRET_KEY_BYTES)
    public = _hex_field(name, document, "public_key", PUBLIC_KEY_BYTES)
    try:
        derived = public_key(secret)
    except ValueError as e:
        raise KeyFileError(name, str(e)) from e
    if derived != public:
        raise KeyFileError(name, "public_key does not belong to secret_key")
    return KeyPair(secret=secret, public=public)


def _hex_field(name: str, document: dict[str, object], key: str, length: int) -> bytes:
    value = document.get(key)
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        raw = None
    if raw is None or len(raw) != length:
        raise KeyFileError(name, f"{key} must be {length} bytes of hex")
    return raw


def sign(secret: bytes, message: bytes) -> bytes:
    """The 96-byte PopSchemeMPL signature of `message` (raises ValueError on a bad secret)."""
    return bytes(PopSchemeMPL.sign(_secret_key(secret), message))


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Whether `signature` is `public`'s signature of `message`; False for malformed bytes."""
    public_key_point = _g1_or_none(public)
    signature_point = _g2_or_none(signature)
    if public_key_point is None or signature_point is None:
        return False
    return bool(PopSchemeMPL.verify(public_key_point, message, signature_point))


def aggregate(signatures: Iterable[bytes]) -> bytes:
    """Aggregate signatures (verify each first); raises ValueError on none or malformed ones."""
    points = [_g2_or_none(signature) for signature in signatures]
    if not points:
        raise ValueError("nothing to aggregate")
    if any(point is None for point in points):
        raise ValueError("malformed signature in aggregate")
    return bytes(PopSchemeMPL.aggregate(points))


def verify_aggregate(publics: Sequence[bytes], message: bytes, aggregate_signature: bytes) -> bool:
    """Whether the distinct keys `publics` all signed the same `message` (fast aggregate verify).

    False for no keys, a repeated key, or malformed bytes.
    """
    if not publics or len(set(publics)) != len(publics):
        return False
    points = [_g1_or_none(public) for public in publics]
    signature_point = _g2_or_none(aggregate_signature)
    if signature_point is None or any(point is None for point in points):
        return False
    return bool(PopSchemeMPL.fast_aggregate_verify(points, message, signature_point))


def _secret_key(secret: bytes) -> PrivateKey:
    if len(secret) != SECRET_KEY_BYTES:
        raise ValueError(f"secret key must be {SECRET_KEY_BYTES} bytes")
    try:
        return PrivateKey.from_bytes(bytes(secret))
    except (ValueError, RuntimeError) as e:
        raise ValueError(f"bad secret key: {e}") from e


def _g1_or_none(raw: bytes) -> G1Element | None:
    if len(raw) != PUBLIC_KEY_BYTES:
        return None
    try:
        point = G1Element.from_bytes(bytes(raw))
    except (ValueError, RuntimeError):
        return None
    return None if point == G1Element() else point  # the identity is nobody's key


def _g2_or_none(raw: bytes) -> G2Element | None:
    if len(raw) != SIGNATURE_BYTES:
        return None
    try:
        return G2Element.from_bytes(bytes(raw))
    except (ValueError, RuntimeError):
        return None
