"""Protocol constants of the codec (PROTOCOL.md §2), each derived from the ones it depends on.

Units are in the names. Runtime configuration (e.g. a producer's `--max-rows`) lives elsewhere;
these values are fixed by the protocol and by ckzg.
"""

# BLS12-381 scalar field (Fr) and its canonical 32-byte big-endian serialisation.
BLS_MODULUS = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
PRIMITIVE_ROOT_OF_UNITY = 7  # generator used by the Ethereum specs for roots of unity
BYTES_PER_FIELD_ELEMENT = 32
# Why 31 payload bytes: `0x00 || 31 bytes` is always below BLS_MODULUS, so any payload packs
# into canonical field elements without a range check or a lossy reduction.
PAYLOAD_BYTES_PER_FIELD_ELEMENT = BYTES_PER_FIELD_ELEMENT - 1

# ckzg geometry: a row is one EIP-4844 blob; its 2x extension has twice as many cells.
FIELD_ELEMENTS_PER_BLOB = 4096
FIELD_ELEMENTS_PER_CELL = 64
BYTES_PER_CELL = BYTES_PER_FIELD_ELEMENT * FIELD_ELEMENTS_PER_CELL
PAYLOAD_BYTES_PER_CELL = PAYLOAD_BYTES_PER_FIELD_ELEMENT * FIELD_ELEMENTS_PER_CELL
CELLS_PER_ROW = FIELD_ELEMENTS_PER_BLOB // FIELD_ELEMENTS_PER_CELL
CELLS_PER_EXT_ROW = 2 * CELLS_PER_ROW
BYTES_PER_ROW = BYTES_PER_CELL * CELLS_PER_ROW
BYTES_PER_COMMITMENT = 48
BYTES_PER_PROOF = 48

# Blob layout.
NAMESPACE_BYTES = 29
BLOB_HASH_BYTES = 32

# Square size: k original rows, a power of two.
DEFAULT_MAX_ROWS = 64
MAX_ROWS_LIMIT = 512
