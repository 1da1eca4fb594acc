"""The only importer of ckzg: trusted setup, row commitments, cells and proofs, recovery.

The trusted setup is the Ethereum KZG ceremony output shipped by the pinned `eth-consensus-specs`
package. It is written once to a cache file in ckzg's text format (keyed by the JSON's sha256,
never committed, never generated from a known secret) and loaded once per process, lazily, so
worker processes of an executor each load it on first use. The file is not trusted because it
exists: before each load its bytes are hashed and compared with `SETUP_TEXT_SHA256` (pinned here,
and checked against the text derived from the package's JSON), and rewritten when they differ.

ckzg's ValueError/RuntimeError become our errors; a verification returning False is an outcome.

A workaround lives here too: ckzg 2.1.8 (the newest release) leaks the two lists that
`compute_cells_and_kzg_proofs` and `recover_cells_and_kzg_proofs` return (the binding packs them
into its result tuple with `PyTuple_Pack`, which takes references of its own, and never drops the
ones `PyList_New` gave it), so every call leaked ~260 KB and an encoding worker grew by the size
of every row it ever computed. `_release_leaked` drops exactly that extra reference, and only when
a probe at load time finds it there: a fixed ckzg is detected and left alone.
"""

import ctypes
import hashlib
import importlib.resources
import json
import os
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ckzg

from erasure.constants import (
    BYTES_PER_CELL,
    BYTES_PER_COMMITMENT,
    BYTES_PER_PROOF,
    BYTES_PER_ROW,
    CELLS_PER_EXT_ROW,
    CELLS_PER_ROW,
    FIELD_ELEMENTS_PER_BLOB,
)
from erasure.errors import (
    InvalidCell,
    InvalidCommitment,
    InvalidFieldElement,
    InvalidProof,
    Unrecoverable,
)

SETUP_RESOURCE = ("presets", "mainnet", "trusted_setups", "trusted_setup_4096.json")
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "da-sampling"
DEFAULT_PRECOMPUTE = 8  # measured: cells and proofs 0.23 s per row vs 0.36 s without
G2_POINTS = 65
# sha256 of ckzg's text form of the ceremony output in eth-consensus-specs 1.7.0a13 (pinned).
SETUP_TEXT_SHA256 = "d39b9f2d047cc9dca2de58f264b6a09448ccd34db967881a6713eacacf0f26b7"

KzgSettings = Any  # ckzg's opaque settings capsule

_lock = threading.Lock()
_settings: KzgSettings | None = None


def setup_json_bytes() -> bytes:
    """The ceremony output as shipped in the installed eth-consensus-specs package."""
    package, *parts = SETUP_RESOURCE
    resource = importlib.resources.files(package)
    for part in parts:  # one step at a time: `presets` is a namespace package (MultiplexedPath)
        resource = resource / part
    return resource.read_bytes()


def setup_text(raw_json: bytes) -> str:
    """ckzg's text format: 4096, 65, then g1_lagrange, g2_monomial, g1_monomial, hex without 0x."""
    setup = json.loads(raw_json)
    g1_lagrange, g2, g1_monomial = setup["g1_lagrange"], setup["g2_monomial"], setup["g1_monomial"]
    if len(g1_lagrange) != FIELD_ELEMENTS_PER_BLOB or len(g2) != G2_POINTS:
        raise RuntimeError("the packaged trusted setup has an unexpected shape")
    lines = [str(len(g1_lagrange)), str(len(g2))]
    lines += [point.removeprefix("0x") for point in (*g1_lagrange, *g2, *g1_monomial)]
    return "\n".join(lines) + "\n"


def checked_setup_text(raw_json: bytes) -> bytes:
    """`setup_text` of the package's JSON, as bytes; RuntimeError unless it is the pinned one."""
    text = setup_text(raw_json).encode()
    if hashlib.sha256(text).hexdigest() != SETUP_TEXT_SHA256:
        raise RuntimeError("the packaged trusted setup is not the pinned ceremony output")
    return text


def _file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def trusted_setup_file(path: Path | None = None) -> Path:
    """Write the setup in ckzg's format to `path` (default: cache keyed by the JSON's sha256).

    A file already there is kept only if its bytes hash to `SETUP_TEXT_SHA256`; otherwise
    (tampered, truncated) it is rewritten. The write is atomic (temporary file, then rename).
    Returns the path.
    """
    raw = setup_json_bytes()
    text = checked_setup_text(raw)
    if path is None:
        path = DEFAULT_CACHE_DIR / f"trusted_setup_{hashlib.sha256(raw).hexdigest()[:16]}.txt"
    path = Path(path)
    if _file_sha256(path) == SETUP_TEXT_SHA256:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # a public parameter file; mkstemp creates it private
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def load_settings(path: Path | None = None, precompute: int = DEFAULT_PRECOMPUTE) -> KzgSettings:
    """A fresh ckzg settings object from the setup at `path` (written first if None)."""
    return ckzg.load_trusted_setup(str(trusted_setup_file(path)), precompute)


def use_trusted_setup(path: Path | None = None, precompute: int = DEFAULT_PRECOMPUTE) -> None:
    """Load the process-wide settings now, from `path` if given (else the cached default)."""
    global _settings
    settings = load_settings(path, precompute)
    with _lock:
        _settings = settings


def settings() -> KzgSettings:
    """The process-wide settings, loaded on first use."""
    global _settings
    with _lock:
        if _settings is None:
            _settings = load_settings()
        return _settings


_leaks_result_lists: bool | None = None  # probed on first use


def _probe_result_list_leak(ts: KzgSettings) -> bool:
    """Whether this ckzg keeps an extra reference to the lists it returns (see the docstring)."""
    cells, proofs = ckzg.compute_cells_and_kzg_proofs(bytes(BYTES_PER_ROW), ts)
    fresh = list(cells)  # a list referenced by one local name, like `cells` would be
    leaks = sys.getrefcount(cells) > sys.getrefcount(fresh)
    if leaks:
        _drop_reference(cells)
        _drop_reference(proofs)
    return leaks


def _release_leaked(ts: KzgSettings, *lists: list[bytes]) -> None:
    """Drop the reference ckzg leaked on each of `lists` (the caller still holds its own)."""
    global _leaks_result_lists
    if _leaks_result_lists is None:
        _leaks_result_lists = _probe_result_list_leak(ts)
    if _leaks_result_lists:
        for leaked in lists:
            _drop_reference(leaked)


def _drop_reference(obj: object) -> None:
    ctypes.pythonapi.Py_DecRef(ctypes.py_object(obj))


def _check_row(row: bytes) -> None:
    if len(row) != BYTES_PER_ROW:
        raise InvalidFieldElement(f"a row must be {BYTES_PER_ROW} bytes, got {len(row)}")


def commit(row: bytes, ts: KzgSettings | None = None) -> bytes:
    """The KZG commitment (48 bytes) of a row of 4096 field elements."""
    _check_row(row)
    try:
        return bytes(ckzg.blob_to_kzg_commitment(row, ts or settings()))
    except (ValueError, RuntimeError) as e:
        raise InvalidFieldElement("a field element of the row is not below the modulus") from e


def compute_cells_and_proofs(
    row: bytes, ts: KzgSettings | None = None
) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """The 128 cells of the extended row (0..63 are `row` itself) and their 128 proofs."""
    _check_row(row)
    try:
        ts = ts or settings()
        cells, proofs = ckzg.compute_cells_and_kzg_proofs(row, ts)
    except (ValueError, RuntimeError) as e:
        raise InvalidFieldElement("a field element of the row is not below the modulus") from e
    _release_leaked(ts, cells, proofs)
    return tuple(cells), tuple(proofs)


def recover_row(
    cell_indices: Sequence[int], cells: Sequence[bytes], ts: KzgSettings | None = None
) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """All 128 cells and proofs of a row from at least 64 of its cells (`cell_indices` columns).

    Raises Unrecoverable with fewer than 64 distinct cells, InvalidCell on malformed cells.
    """
    if len(set(cell_indices)) < CELLS_PER_ROW:
        raise Unrecoverable(f"a row needs {CELLS_PER_ROW} cells, got {len(set(cell_indices))}")
    _check_cells(cell_indices, cells)
    try:
        ts = ts or settings()
        got_cells, proofs = ckzg.recover_cells_and_kzg_proofs(list(cell_indices), list(cells), ts)
    except (ValueError, RuntimeError) as e:
        raise InvalidCell("cells could not be decoded for recovery") from e
    _release_leaked(ts, got_cells, proofs)
    return tuple(got_cells), tuple(proofs)


def _check_cells(cell_indices: Sequence[int], cells: Sequence[bytes]) -> None:
    if len(cell_indices) != len(cells):
        raise InvalidCell(f"{len(cell_indices)} indices for {len(cells)} cells")
    for col, cell in zip(cell_indices, cells, strict=True):
        if not 0 <= col < CELLS_PER_EXT_ROW:
            raise InvalidCell(f"column {col} outside 0..{CELLS_PER_EXT_ROW - 1}", col=col)
        if len(cell) != BYTES_PER_CELL:
            raise InvalidCell(f"a cell must be {BYTES_PER_CELL} bytes, got {len(cell)}", col=col)


def verify_cells(
    commitments: Sequence[bytes],
    cell_indices: Sequence[int],
    cells: Sequence[bytes],
    proofs: Sequence[bytes],
    ts: KzgSettings | None = None,
) -> bool:
    """Batch-verify cells (one row commitment per cell, columns 0..127) against their proofs.

    Raises on wrong lengths or mismatched counts (validate at the edge); returns False when
    bytes of the right length do not decode (non-canonical field element, not a G1 point) or
    any proof does not verify.
    """
    _check_cells(cell_indices, cells)
    if not len(commitments) == len(proofs) == len(cells):
        raise InvalidProof(
            f"{len(commitments)} commitments, {len(proofs)} proofs, {len(cells)} cells"
        )
    if any(len(c) != BYTES_PER_COMMITMENT for c in commitments):
        raise InvalidCommitment(f"a commitment must be {BYTES_PER_COMMITMENT} bytes")
    if any(len(p) != BYTES_PER_PROOF for p in proofs):
        raise InvalidProof(f"a proof must be {BYTES_PER_PROOF} bytes")
    try:
        return bool(
            ckzg.verify_cell_kzg_proof_batch(
                list(commitments), list(cell_indices), list(cells), list(proofs), ts or settings()
            )
        )
    except (ValueError, RuntimeError):
        return False  # undecodable bytes cannot verify: an outcome, like a wrong proof
