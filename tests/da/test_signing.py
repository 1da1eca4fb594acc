import json
import stat
from pathlib import Path

import pytest

from da import signing
from da.errors import KeyFileError
from da.signing import (
    KeyPair,
    aggregate,
    generate_keypair,
    public_key,
    read_key_file,
    sign,
    verify,
    verify_aggregate,
    write_key_file,
)

MESSAGE = b"\x11" * 32


def keypair(n: int) -> KeyPair:
    return generate_keypair(bytes([n]) * 32)


def test_generate_is_deterministic_in_the_seed_and_random_without() -> None:
    assert keypair(1) == keypair(1)
    assert keypair(1) != keypair(2)
    fresh = generate_keypair()
    assert fresh != generate_keypair()
    assert len(fresh.secret) == 32 and len(fresh.public) == 48
    assert public_key(fresh.secret) == fresh.public


def test_short_seed_rejected() -> None:
    with pytest.raises(ValueError):
        generate_keypair(b"\x00" * 31)


def test_secret_stays_out_of_repr() -> None:
    pair = keypair(3)
    assert pair.secret.hex() not in repr(pair) and repr(pair.secret) not in repr(pair)


def test_sign_and_verify() -> None:
    pair = keypair(1)
    signature = sign(pair.secret, MESSAGE)
    assert len(signature) == 96
    assert verify(pair.public, MESSAGE, signature)
    assert not verify(pair.public, MESSAGE[:-1] + b"\x12", signature)
    assert not verify(keypair(2).public, MESSAGE, signature)


@pytest.mark.parametrize(
    ("public", "signature"),
    [
        (b"", None),
        (b"\x00" * 48, None),  # not a point encoding
        (bytes([0xC0]) + bytes(47), None),  # the identity is nobody's key
        (b"\xff" * 48, None),
        (None, b""),
        (None, b"\x00" * 96),
        (None, b"\xff" * 96),
        (None, b"\x01" * 95),
    ],
)
def test_verify_is_false_for_malformed_bytes(public: bytes | None, signature: bytes | None) -> None:
    pair = keypair(1)
    good_signature = sign(pair.secret, MESSAGE)
    assert not verify(
        pair.public if public is None else public,
        MESSAGE,
        good_signature if signature is None else signature,
    )


def test_bad_secret_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        sign(b"\xff" * 32, MESSAGE)  # above the group order
    with pytest.raises(ValueError):
        sign(b"\x01" * 31, MESSAGE)


def test_aggregate_verify() -> None:
    pairs = [keypair(n) for n in range(1, 5)]
    publics = [p.public for p in pairs]
    combined = aggregate(sign(p.secret, MESSAGE) for p in pairs)
    assert len(combined) == 96
    assert verify_aggregate(publics, MESSAGE, combined)
    assert verify_aggregate(list(reversed(publics)), MESSAGE, combined)
    assert not verify_aggregate(publics[:3], MESSAGE, combined)
    assert not verify_aggregate(publics, b"other", combined)
    assert not verify_aggregate([], MESSAGE, combined)
    assert not verify_aggregate(publics + [publics[0]], MESSAGE, combined)  # repeated signer
    assert not verify_aggregate(publics, MESSAGE, b"\x00" * 96)
    assert not verify_aggregate([b"\x00" * 48, *publics[1:]], MESSAGE, combined)


def test_aggregate_rejects_nothing_and_garbage() -> None:
    with pytest.raises(ValueError):
        aggregate([])
    with pytest.raises(ValueError):
        aggregate([b"\x00" * 96])


def test_key_file_round_trip_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "producer.key"
    pair = keypair(7)
    write_key_file(path, pair)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key_file(path) == pair
    assert [p.name for p in tmp_path.iterdir()] == ["producer.key"]  # no temporary left over


def test_key_file_is_never_overwritten_unless_told(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    write_key_file(path, keypair(1))
    with pytest.raises(KeyFileError, match="exists"):
        write_key_file(path, keypair(2))
    assert read_key_file(path) == keypair(1)
    write_key_file(path, keypair(2), overwrite=True)
    assert read_key_file(path) == keypair(2)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_key_file_in_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError):
        write_key_file(tmp_path / "nope" / "k.json", keypair(1))


def _document(pair: KeyPair) -> dict[str, str]:
    return {
        "scheme": signing.KEY_FILE_SCHEME,
        "secret_key": pair.secret.hex(),
        "public_key": pair.public.hex(),
    }


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\xff\xfe not utf-8",
        b"not json",
        b"[]",
        json.dumps({**_document(keypair(1)), "scheme": "ed25519"}).encode(),
        json.dumps({**_document(keypair(1)), "secret_key": "zz"}).encode(),
        json.dumps({**_document(keypair(1)), "secret_key": 5}).encode(),
        json.dumps({**_document(keypair(1)), "public_key": "00" * 47}).encode(),
        json.dumps({**_document(keypair(1)), "public_key": keypair(2).public.hex()}).encode(),
        json.dumps({**_document(keypair(1)), "secret_key": "ff" * 32}).encode(),
    ],
)
def test_bad_key_file_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(KeyFileError) as caught:
        read_key_file(path)
    assert str(path) in str(caught.value)


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError):
        read_key_file(tmp_path / "absent.key")
