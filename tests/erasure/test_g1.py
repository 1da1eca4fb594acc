import pytest

from erasure import InvalidCommitment
from erasure.g1 import IDENTITY, decode_points, is_identity, msm

GENERATOR = bytes.fromhex(
    "97f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb"
)


def test_msm_linearity() -> None:
    [g] = decode_points([GENERATOR])
    assert msm([g, g], [2, 3]) == msm([g], [5])
    assert is_identity(
        msm([g, g], [1, -1 % 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001])
    )
    assert msm([], []) == IDENTITY


@pytest.mark.parametrize("raw", [b"\x01" * 48, GENERATOR[:47], b"\xff" * 48])
def test_decode_rejects(raw: bytes) -> None:
    with pytest.raises(InvalidCommitment):
        decode_points([raw])
