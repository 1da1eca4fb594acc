"""The error table: every group maps to its status code, most specific first."""

from __future__ import annotations

import grpc
import pytest

from da import errors as da_errors
from da.api.errors import INTERNAL_MESSAGE, STATUS_TABLE, status_for
from erasure import errors as erasure_errors

C = grpc.StatusCode


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (erasure_errors.InvalidNamespace("ns"), C.INVALID_ARGUMENT),
        (erasure_errors.InvalidBlob("empty"), C.INVALID_ARGUMENT),
        (erasure_errors.InvalidCell("short"), C.INVALID_ARGUMENT),
        (erasure_errors.InvalidProof("short"), C.INVALID_ARGUMENT),
        (erasure_errors.InvalidCommitment("short"), C.INVALID_ARGUMENT),
        (erasure_errors.InvalidFieldElement("big"), C.INVALID_ARGUMENT),
        (erasure_errors.SquareTooLarge(128, 64), C.RESOURCE_EXHAUSTED),
        (da_errors.InvalidRequest("bad"), C.INVALID_ARGUMENT),
        (da_errors.BadCoordinate(300, 1, 4), C.INVALID_ARGUMENT),
        (da_errors.BadNamespace(b"\x00", "reserved"), C.INVALID_ARGUMENT),
        (da_errors.InvalidHeader("short"), C.INVALID_ARGUMENT),
        (da_errors.WrongChain("a", "b"), C.INVALID_ARGUMENT),
        (da_errors.UnknownHeight(7), C.NOT_FOUND),
        (da_errors.NotSampled(7), C.NOT_FOUND),
        (da_errors.UnknownBlob(b"\x01" * 32), C.NOT_FOUND),
        (da_errors.TooLarge("blob", 10, 5), C.RESOURCE_EXHAUSTED),
        (da_errors.RateLimited("ipv4:1.2.3.4:5"), C.RESOURCE_EXHAUSTED),
        (da_errors.Unauthenticated(), C.UNAUTHENTICATED),
        (da_errors.Unavailable("syncing"), C.UNAVAILABLE),
        (da_errors.Unimplemented("SubmitBlob", "ask the producer"), C.UNIMPLEMENTED),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else value.name,
)
def test_each_error_maps_to_its_code(exc: Exception, code: grpc.StatusCode) -> None:
    assert status_for(exc) == (code, str(exc))


def test_unknown_errors_are_internal_with_a_generic_message() -> None:
    assert status_for(KeyError("secret detail")) == (C.INTERNAL, INTERNAL_MESSAGE)
    assert status_for(da_errors.KeyFileError("/k", "bad"))[0] is C.INTERNAL


def test_table_is_ordered_most_specific_first() -> None:
    for i, (earlier, _) in enumerate(STATUS_TABLE):
        for later, _ in STATUS_TABLE[i + 1 :]:
            assert not issubclass(later, earlier), f"{later.__name__} is shadowed by {earlier}"
