"""Errors of the codec. Every one is a `ValueError`: they all mean "these inputs are wrong"."""


class ErasureError(ValueError):
    """Base class of every error raised by `erasure`."""


class InvalidNamespace(ErasureError):
    """A namespace is empty, longer than 29 bytes, or reserved (all-zero or all-0xFF).

    Retrying elsewhere cannot help: the submitter must choose another namespace.
    """


class InvalidBlob(ErasureError):
    """A blob is empty, malformed, or alone larger than the largest square allowed.

    Retrying cannot help: the blob itself must change.
    """


class SquareTooLarge(ErasureError):
    """The blobs of one block need more rows than `max_rows` allows.

    A producer should move some blobs to a later block; each one fits on its own.
    """

    def __init__(self, rows_needed: int, max_rows: int) -> None:
        super().__init__(f"the blobs need {rows_needed} rows, more than max_rows={max_rows}")
        self.rows_needed = rows_needed
        self.max_rows = max_rows


class InvalidFieldElement(ErasureError):
    """A 32-byte field element is not below BLS_MODULUS (non-canonical)."""


class InvalidCell(ErasureError):
    """A cell has the wrong length, bad coordinates, or content that disagrees with its row.

    When a peer served it, fetching the same cell from another peer can help.
    """

    def __init__(self, message: str, row: int | None = None, col: int | None = None) -> None:
        super().__init__(message)
        self.row = row
        self.col = col


class InvalidProof(ErasureError):
    """A KZG proof has the wrong length or does not decode to a G1 point."""


class InvalidCommitment(ErasureError):
    """A row commitment has the wrong length or count, or does not decode to a G1 point."""


class Unrecoverable(ErasureError):
    """The cells gathered cannot rebuild the extended square; more cells are needed.

    Fetching the missing cells from other peers can help; the message says what was missing.
    """
