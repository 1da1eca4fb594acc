from erasure import constants as c


def test_cell_and_row_geometry_is_consistent() -> None:
    assert c.BYTES_PER_CELL == 2048
    assert c.PAYLOAD_BYTES_PER_CELL == 1984
    assert c.CELLS_PER_ROW * c.FIELD_ELEMENTS_PER_CELL == c.FIELD_ELEMENTS_PER_BLOB
    assert c.CELLS_PER_EXT_ROW == 2 * c.CELLS_PER_ROW == 128
    assert c.BYTES_PER_ROW == c.FIELD_ELEMENTS_PER_BLOB * c.BYTES_PER_FIELD_ELEMENT


def test_payload_packing_is_always_canonical() -> None:
    largest_packed = int.from_bytes(b"\x00" + b"\xff" * c.PAYLOAD_BYTES_PER_FIELD_ELEMENT, "big")
    assert largest_packed < c.BLS_MODULUS < 2 ** (8 * c.BYTES_PER_FIELD_ELEMENT)


def test_field_has_the_roots_of_unity_we_need() -> None:
    two_adicity = ((c.BLS_MODULUS - 1) & -(c.BLS_MODULUS - 1)).bit_length() - 1
    assert 2 * c.MAX_ROWS_LIMIT <= 2**two_adicity
    assert c.FIELD_ELEMENTS_PER_BLOB * 2 <= 2**two_adicity


def test_row_limits() -> None:
    for rows in (c.DEFAULT_MAX_ROWS, c.MAX_ROWS_LIMIT):
        assert rows & (rows - 1) == 0
    assert 1 <= c.DEFAULT_MAX_ROWS <= c.MAX_ROWS_LIMIT
    assert c.NAMESPACE_BYTES == 29 and c.BYTES_PER_COMMITMENT == c.BYTES_PER_PROOF == 48
