import hashlib
import json
from pathlib import Path

import pytest

from erasure import InvalidCell, InvalidFieldElement, Unrecoverable, kzg
from erasure.constants import BLS_MODULUS, BYTES_PER_ROW
from erasure.square import ExtendedSquare


def test_setup_file_is_ckzg_text_format(tmp_path: Path) -> None:
    path = kzg.trusted_setup_file(tmp_path / "sub" / "setup.txt")
    lines = path.read_text().splitlines()
    setup = json.loads(kzg.setup_json_bytes())
    assert lines[:2] == ["4096", "65"]
    assert len(lines) == 2 + 4096 + 65 + 4096
    assert lines[2] == setup["g1_lagrange"][0][2:]
    assert lines[2 + 4096] == setup["g2_monomial"][0][2:]
    assert lines[-1] == setup["g1_monomial"][-1][2:]
    assert [p.name for p in path.parent.iterdir()] == ["setup.txt"]  # no temporary left
    assert kzg.trusted_setup_file(path) == path  # idempotent


def test_default_cache_is_keyed_by_the_json_hash() -> None:
    path = kzg.trusted_setup_file()
    assert path.parent == kzg.DEFAULT_CACHE_DIR and path.exists()


def test_commit_rejects_noncanonical_and_wrong_length() -> None:
    row = bytearray(BYTES_PER_ROW)
    row[32:64] = BLS_MODULUS.to_bytes(32, "big")
    with pytest.raises(InvalidFieldElement):
        kzg.commit(bytes(row))
    with pytest.raises(InvalidFieldElement):
        kzg.compute_cells_and_proofs(bytes(10))


def test_verify_cells_outcomes(square_k1: ExtendedSquare) -> None:
    sq = square_k1
    c, cell, proof = sq.commitments[0], sq.cell(0, 3), sq.proof(0, 3)
    assert kzg.verify_cells([c], [3], [cell], [proof])
    assert not kzg.verify_cells([c], [4], [cell], [proof])  # asked for another coordinate
    assert not kzg.verify_cells([c], [3], [cell], [sq.proof(0, 4)])
    assert not kzg.verify_cells([c], [3], [b"\xff" * 2048], [proof])  # undecodable: False
    with pytest.raises(InvalidCell):
        kzg.verify_cells([c], [128], [cell], [proof])


def test_recover_row_needs_half(square_k1: ExtendedSquare) -> None:
    cells = square_k1.row_cells(1)
    got, proofs = kzg.recover_row(list(range(64, 128)), cells[64:])
    assert got == cells and proofs == square_k1.row_proofs(1)
    with pytest.raises(Unrecoverable):
        kzg.recover_row(list(range(63)), cells[:63])


def test_a_tampered_setup_cache_is_rewritten(tmp_path: Path) -> None:
    path = kzg.trusted_setup_file(tmp_path / "setup.txt")
    good = path.read_bytes()
    lines = good.decode().splitlines()
    lines[2] = lines[3]  # another valid G1 point in the first Lagrange slot
    path.write_text("\n".join(lines) + "\n")
    assert kzg.trusted_setup_file(path) == path
    assert path.read_bytes() == good
    path.write_bytes(good[:1000])  # truncated
    kzg.load_settings(path, precompute=0)
    assert path.read_bytes() == good


def test_the_setup_text_is_the_pinned_one() -> None:
    text = kzg.checked_setup_text(kzg.setup_json_bytes())
    assert hashlib.sha256(text).hexdigest() == kzg.SETUP_TEXT_SHA256
    tampered = json.loads(kzg.setup_json_bytes())
    tampered["g1_lagrange"][0] = tampered["g1_lagrange"][1]
    with pytest.raises(RuntimeError, match="pinned"):
        kzg.checked_setup_text(json.dumps(tampered).encode())
