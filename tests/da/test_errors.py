import pickle

import pytest

from da import errors
from da.errors import (
    BadCoordinate,
    BadNamespace,
    BadSignature,
    BrokenLink,
    DAError,
    Equivocation,
    HeaderRejected,
    InconsistentCommitments,
    InvalidHeader,
    InvalidRequest,
    KeyFileError,
    NotFound,
    NotSampled,
    PermissionDenied,
    RateLimited,
    ResourceExhausted,
    TooLarge,
    TooManyRows,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    UnknownBlob,
    UnknownHeight,
    UntrustedProducer,
    WrongChain,
)

EXAMPLES = [
    KeyFileError("/k", "missing"),
    InvalidHeader("bad magic"),
    WrongChain("main", "test"),
    UntrustedProducer(b"\x01" * 48),
    BadSignature(3, b"\x02" * 32),
    BrokenLink(3, b"\x03" * 32, b"\x04" * 32),
    TooManyRows(128, 64),
    InconsistentCommitments(5),
    Equivocation(7, b"\x05" * 32, b"\x06" * 32),
    InvalidRequest("no"),
    BadCoordinate(300, 5, 64),
    BadNamespace(b"\x00", "reserved"),
    UnknownHeight(9),
    NotSampled(9),
    UnknownBlob(b"\x07" * 32),
    TooLarge("blob", 10, 5),
    RateLimited("peer:1", 1.5),
    Unauthenticated(),
    Unavailable("syncing"),
    Unimplemented("SubmitBlob", "submit to the producer"),
    PermissionDenied("key abcd is not an operator"),
]


@pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
def test_every_error_pickles_and_reads(error: DAError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert copy.args == error.args
    assert str(copy) == str(error)
    assert str(error)


def test_every_class_is_documented_and_under_one_base() -> None:
    classes = [
        c for c in vars(errors).values() if isinstance(c, type) and c.__module__ == "da.errors"
    ]
    assert {type(e) for e in EXAMPLES} | {
        DAError,
        HeaderRejected,
        NotFound,
        ResourceExhausted,
    } == set(classes)
    for cls in classes:
        assert issubclass(cls, DAError)
        assert cls.__doc__


@pytest.mark.parametrize(
    ("leaf", "base"),
    [
        (WrongChain, HeaderRejected),
        (UntrustedProducer, HeaderRejected),
        (BadSignature, HeaderRejected),
        (BrokenLink, HeaderRejected),
        (TooManyRows, HeaderRejected),
        (InconsistentCommitments, HeaderRejected),
        (BadCoordinate, InvalidRequest),
        (BadNamespace, InvalidRequest),
        (UnknownHeight, NotFound),
        (NotSampled, NotFound),
        (UnknownBlob, NotFound),
        (TooLarge, ResourceExhausted),
        (RateLimited, ResourceExhausted),
    ],
)
def test_leaves_sit_under_the_base_their_status_code_maps(leaf: type, base: type) -> None:
    assert issubclass(leaf, base)


def test_status_code_groups_are_disjoint() -> None:
    groups = [
        InvalidRequest,
        NotFound,
        ResourceExhausted,
        Unauthenticated,
        Unavailable,
        Unimplemented,
    ]
    for group in groups:
        assert not any(issubclass(group, other) for other in groups if other is not group)
    assert not issubclass(InvalidHeader, HeaderRejected)
    assert not issubclass(HeaderRejected, InvalidRequest)


def test_typed_fields() -> None:
    error = BadCoordinate(300, 5, 64)
    assert (error.row, error.col, error.k) == (300, 5, 64)
    assert "128 x 128" in str(error)
    link = BrokenLink(3, b"\x03" * 32, b"\x04" * 32)
    assert (link.height, link.expected_prev, link.got_prev) == (3, b"\x03" * 32, b"\x04" * 32)
