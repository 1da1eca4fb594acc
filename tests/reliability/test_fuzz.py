"""Scenario 7: fuzzing every gRPC method and the header decoder with hypothesis.

One producer, one storage node and one light client run for the whole module. Every method gets
random well-typed requests (built from the message descriptors) and random raw payloads (often
not protobuf at all). Each call carries a deadline; the answer must be OK or one of the codes
that this method really answers with (`EMITTED`: the error table's codes the method can reach);
never UNKNOWN or INTERNAL (a payload that is not a protobuf of the request type is
INVALID_ARGUMENT: our edge decodes requests inside the error table's scope), a deadline overrun
(a hang) or UNAVAILABLE (a dead server).
Afterwards every process still answers health checks and a good request. The header decoder must
turn any bytes into a header or `InvalidHeader`, verification must turn any decodable header
into a verdict or a `DAError`, never another exception, and every mutation of a valid signed
header must fail one of the two.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from da.errors import DAError
from da.header import signed_header_from_bytes, trust_root_from_hex, verify_signed_header
from da.v1 import da_pb2 as pb
from tests.integration.harness import Cluster, DaProcess, wait_serving, wait_until
from tests.reliability.helpers import Feeder, head, header_at

CALL_TIMEOUT = 5.0
STREAM_TIMEOUT = 1.0
EXAMPLES = 25
OK, BAD, NONE, LIMIT, DENIED = (
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.PERMISSION_DENIED,
)
# What each method can answer here (no token is configured, so never UNAUTHENTICATED; a rate
# limit can refuse any call). Attest: a non-operator key is PERMISSION_DENIED (PROTOCOL.md §11).
EMITTED: dict[str, set[grpc.StatusCode]] = {
    "SubmitBlob": {OK, BAD, LIMIT},
    "GetBlobStatus": {OK, BAD, NONE, LIMIT},
    "GetBlobs": {OK, BAD, NONE, LIMIT},
    "GetHeader": {OK, NONE, LIMIT, BAD},
    "SubscribeHeaders": {OK, LIMIT, BAD},
    "GetSamples": {OK, BAD, NONE, LIMIT},
    "GetRow": {OK, BAD, NONE, LIMIT},
    "Attest": {OK, BAD, NONE, LIMIT, DENIED},
    "GetCertificate": {OK, NONE, LIMIT, BAD},
    "GetAvailability": {OK, NONE, LIMIT, BAD},
}
MALFORMED = [b"\x00", b"\xff\xff\xff\xff", b"\x0a\xff\x01", b"\x12\x05ab"]
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


@dataclass
class Nodes:
    cluster: Cluster
    producer: DaProcess
    storage: DaProcess
    light: DaProcess


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    cluster = Cluster(Path(tmp_path_factory.mktemp("fuzz")))
    try:
        producer = cluster.producer("producer", "--max-blob-bytes", "4096")
        feeder = Feeder(producer, interval=0.3).start()
        storage = cluster.storage_node("storage", producer)
        light = cluster.light_client("light", [storage.listen])
        wait_until(lambda: head(storage) >= 2, timeout=60, what="two stored blocks")
        feeder.stop()
        yield Nodes(cluster, producer, storage, light)
    finally:
        cluster.close()


# (role, service, method, request type, server-streaming)
METHODS = [
    ("producer", "BlobService", "SubmitBlob", pb.SubmitBlobRequest, False),
    ("producer", "BlobService", "GetBlobStatus", pb.GetBlobStatusRequest, False),
    ("producer", "BlobService", "GetBlobs", pb.GetBlobsRequest, False),
    ("storage", "BlobService", "GetBlobs", pb.GetBlobsRequest, False),
    ("producer", "HeaderService", "GetHeader", pb.GetHeaderRequest, False),
    ("storage", "HeaderService", "GetHeader", pb.GetHeaderRequest, False),
    ("storage", "HeaderService", "SubscribeHeaders", pb.SubscribeHeadersRequest, True),
    ("producer", "ShareService", "GetSamples", pb.GetSamplesRequest, False),
    ("storage", "ShareService", "GetSamples", pb.GetSamplesRequest, False),
    ("storage", "ShareService", "GetRow", pb.GetRowRequest, False),
    ("producer", "AttestationService", "Attest", pb.Attestation, False),
    ("producer", "AttestationService", "GetCertificate", pb.GetCertificateRequest, False),
    ("light", "SamplingService", "GetAvailability", pb.GetAvailabilityRequest, False),
]
METHOD_IDS = [f"{role}-{method}" for role, _, method, _, _ in METHODS]

U64 = st.one_of(st.integers(0, 4), st.integers(0, 2**64 - 1))
U32 = st.one_of(st.integers(0, 130), st.integers(0, 2**32 - 1))
SIZES = st.sampled_from([0, 1, 29, 30, 32, 48, 96, 2048])
BYTES = st.one_of(
    st.binary(max_size=64), SIZES.flatmap(lambda n: st.binary(min_size=n, max_size=n))
)


def message_strategy(cls: type[Message], depth: int = 0) -> st.SearchStrategy[Message]:
    """Random messages of `cls`: every field set or not, with edge-heavy values."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for f in cls.DESCRIPTOR.fields:
        value = field_strategy(f, depth)
        if f.is_repeated:
            value = st.lists(value, max_size=40)
        fields[f.name] = st.one_of(st.none(), value)

    def build(values: dict[str, Any]) -> Message:
        return cls(**{k: v for k, v in values.items() if v is not None})

    return st.fixed_dictionaries(fields).map(build)


def field_strategy(f: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if f.type == FieldDescriptor.TYPE_MESSAGE:
        return message_strategy(f.message_type._concrete_class, depth + 1)  # noqa: SLF001
    if f.type == FieldDescriptor.TYPE_UINT64:
        return U64
    if f.type == FieldDescriptor.TYPE_UINT32:
        return U32
    if f.type == FieldDescriptor.TYPE_BYTES:
        return BYTES
    if f.type == FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([v.number for v in f.enum_type.values])
    if f.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if f.type == FieldDescriptor.TYPE_STRING:
        return st.text(max_size=20)
    if f.type == FieldDescriptor.TYPE_DOUBLE:
        return st.floats(allow_nan=True)
    raise NotImplementedError(f.type)


def call(
    target: str,
    service: str,
    method: str,
    payload: bytes,
    streaming: bool,
) -> tuple[grpc.StatusCode, str]:
    """Send `payload` (serialized request bytes) to the method; return its status code."""
    path = f"/da.v1.{service}/{method}"
    identity = bytes
    with grpc.insecure_channel(target) as ch:
        try:
            if streaming:
                stream = ch.unary_stream(
                    path, request_serializer=identity, response_deserializer=identity
                )(payload, timeout=STREAM_TIMEOUT)
                next(iter(stream), None)
            else:
                ch.unary_unary(path, request_serializer=identity, response_deserializer=identity)(
                    payload, timeout=CALL_TIMEOUT
                )
        except grpc.RpcError as e:
            return e.code(), e.details() or ""
    return grpc.StatusCode.OK, ""


def target_of(nodes: Nodes, role: str) -> DaProcess:
    return {"producer": nodes.producer, "storage": nodes.storage, "light": nodes.light}[role]


def check_code(
    code: grpc.StatusCode,
    details: str,
    method: str,
    request_type: type[Message],
    payload: bytes,
    streaming: bool,
    stored_head: int = 0,
) -> None:
    if code in EMITTED[method]:
        return
    if streaming and code == grpc.StatusCode.DEADLINE_EXCEEDED:
        parsed = request_type.FromString(payload)
        assert parsed.from_height > stored_head, f"stream from {parsed.from_height} stalled"
        return  # a subscription from a future height waits for it: not a hang of the server
    raise AssertionError(f"{code.name}: {details!r} for payload {payload[:80].hex()}")


def parses(request_type: type[Message], payload: bytes) -> bool:
    try:
        request_type.FromString(payload)
    except DecodeError:
        return False
    return True


def still_serving(process: DaProcess) -> None:
    assert process.alive(), f"{process.name} died:\n{process.log()}"
    wait_serving(process.listen, timeout=10)


@pytest.mark.parametrize(
    ("role", "service", "method", "request_type", "streaming"), METHODS, ids=METHOD_IDS
)
def test_random_requests_get_a_status_code(
    nodes: Nodes, role: str, service: str, method: str, request_type: type[Message], streaming: bool
) -> None:
    target = target_of(nodes, role)

    @FUZZ_SETTINGS
    @given(request=message_strategy(request_type))
    def fuzz(request: Message) -> None:
        payload = request.SerializeToString()
        before = head(target) if streaming else 0
        code, details = call(target.listen, service, method, payload, streaming)
        check_code(code, details, method, request_type, payload, streaming, before)

    fuzz()
    still_serving(target)


@pytest.mark.parametrize(
    ("role", "service", "method", "request_type", "streaming"), METHODS, ids=METHOD_IDS
)
def test_raw_payloads_get_a_status_code(
    nodes: Nodes, role: str, service: str, method: str, request_type: type[Message], streaming: bool
) -> None:
    target = target_of(nodes, role)

    @FUZZ_SETTINGS
    @given(payload=st.binary(max_size=300))
    def fuzz(payload: bytes) -> None:
        before = head(target) if streaming else 0
        code, details = call(target.listen, service, method, payload, streaming)
        check_code(code, details, method, request_type, payload, streaming, before)

    fuzz()
    still_serving(target)


def test_malformed_protobuf_is_invalid_argument(nodes: Nodes) -> None:
    wrong = []
    for role, service, method, request_type, streaming in METHODS:
        for payload in MALFORMED:
            assert not parses(request_type, payload)
            code, details = call(target_of(nodes, role).listen, service, method, payload, streaming)
            if code != grpc.StatusCode.INVALID_ARGUMENT:
                wrong.append(f"{role} {method} {payload.hex()}: {code.name} {details[:60]}")
    assert not wrong, "\n".join(wrong)


def test_every_process_still_serves_after_the_fuzzing(nodes: Nodes) -> None:
    for process in (nodes.producer, nodes.storage, nodes.light):
        still_serving(process)
    assert header_at(nodes.storage, 1).hash == header_at(nodes.producer, 1).hash
    code, _ = call(
        nodes.light.listen,
        "SamplingService",
        "GetAvailability",
        pb.GetAvailabilityRequest(height=1).SerializeToString(),
        False,
    )
    assert code == grpc.StatusCode.OK


def test_header_decoder_and_verifier_never_crash(nodes: Nodes) -> None:
    valid = header_at(nodes.producer, 1)
    trust = trust_root_from_hex(nodes.cluster.chain_id, [nodes.cluster.producer_pub])

    def mutations(rng: random.Random) -> Iterator[bytes]:
        raw = bytearray(valid.raw)
        yield bytes(raw[: rng.randrange(len(raw))])
        yield bytes(raw) + bytes(rng.randrange(1, 64))
        for _ in range(rng.randrange(1, 4)):
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        yield bytes(raw)

    @settings(FUZZ_SETTINGS, max_examples=200)
    @given(
        seed=st.integers(0, 2**32),
        junk=st.binary(max_size=600),
        signature=st.one_of(
            st.just(valid.signature), st.binary(min_size=96, max_size=96), st.binary(max_size=100)
        ),
    )
    def fuzz(seed: int, junk: bytes, signature: bytes) -> None:
        for raw in (junk, b"DAH1" + junk, *mutations(random.Random(seed))):
            if (raw, signature) == (valid.raw, valid.signature):
                continue  # two flips of one bit cancel out: the original verifies, rightly
            try:
                signed = signed_header_from_bytes(raw, signature)
            except DAError:
                continue
            try:
                verify_signed_header(signed, trust)
            except DAError:
                continue
            raise AssertionError(f"a mutated header verified: {raw.hex()[:80]}")

    fuzz()
