"""The one table mapping our exceptions to gRPC status codes, and the one place applying it.

`STATUS_TABLE` is ordered most specific first; `status_for(exc)` walks it. `ErrorInterceptor`
(installed by `da.api.server.create_server`) applies it to every RPC: a servicer just raises
`DAError` / `ErasureError` leaves and never calls `context.abort` itself. Anything not in the
table is a bug: the client gets INTERNAL with a generic message, the log gets the traceback.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, NoReturn

import grpc
from google.protobuf.message import DecodeError
from grpc.aio import AbortError, ServicerContext
from grpc.experimental import wrap_server_method_handler

from da import errors as da_errors
from da.store import errors as store_errors
from erasure import errors as erasure_errors

log = logging.getLogger(__name__)

INTERNAL_MESSAGE = "internal error"

# Most specific first: SquareTooLarge is an ErasureError (a ValueError) but means "too big".
STATUS_TABLE: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    # Our own stored data no longer decodes: not the caller's fault, and retrying elsewhere helps.
    (store_errors.CorruptValueError, grpc.StatusCode.DATA_LOSS),
    (erasure_errors.SquareTooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (erasure_errors.ErasureError, grpc.StatusCode.INVALID_ARGUMENT),
    (da_errors.InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (da_errors.InvalidHeader, grpc.StatusCode.INVALID_ARGUMENT),
    (da_errors.HeaderRejected, grpc.StatusCode.INVALID_ARGUMENT),
    (da_errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (da_errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (da_errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (da_errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (da_errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (da_errors.Unimplemented, grpc.StatusCode.UNIMPLEMENTED),
)


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and client-facing message for `exc` (INTERNAL, generic, if unmapped)."""
    for exc_type, code in STATUS_TABLE:
        if isinstance(exc, exc_type):
            return code, str(exc) or exc_type.__name__
    return grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE


async def abort_for(
    context: ServicerContext[Any, Any], exc: BaseException, method: str
) -> NoReturn:
    """End the RPC with the status `exc` maps to; unmapped exceptions are logged with traceback."""
    code, message = status_for(exc)
    if code is grpc.StatusCode.INTERNAL:
        log.error("unexpected error in %s", method, exc_info=exc)
    await context.abort(code, message)
    raise AssertionError("unreachable: context.abort raises")


@asynccontextmanager
async def error_scope(method: str, context: ServicerContext[Any, Any]) -> AsyncIterator[None]:
    """Translate exceptions escaping the block into a gRPC status (aborts pass through)."""
    try:
        yield
    except (AbortError, asyncio.CancelledError):
        raise
    except Exception as exc:  # noqa: BLE001 - the table decides; unknown -> INTERNAL + traceback
        await abort_for(context, exc, method)


Scope = Callable[[str, ServicerContext[Any, Any]], Any]
"""An async context manager factory `(method, context) -> AsyncContextManager` run around an RPC."""


def wrap_behavior(
    behavior: Callable[..., Any],
    method: str,
    scope: Scope,
    decode: Callable[[bytes], Any] | None = None,
) -> Callable[..., Any]:
    """Run `behavior(request, context)` inside `scope(method, context)`.

    With `decode`, the request arrives as raw bytes and is decoded inside the scope, so a payload
    that is not a protobuf of the request type becomes INVALID_ARGUMENT through the table (grpc.aio
    would answer UNKNOWN before any of our code runs). Works for every arity: async generators
    (streaming responses written by `yield`) are wrapped as async generators; coroutines (unary
    responses, or streams written with `context.write`) as coroutines.
    """
    if _is_async_gen(behavior):

        async def stream(request: Any, context: ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            async with scope(method, context):
                async for response in behavior(_decoded(request, decode), context):
                    yield response

        return stream

    async def unary(request: Any, context: ServicerContext[Any, Any]) -> Any:
        async with scope(method, context):
            result = behavior(_decoded(request, decode), context)
            if isinstance(result, Awaitable):
                result = await result
            return result

    return unary


def _decoded(request: Any, decode: Callable[[bytes], Any] | None) -> Any:
    if decode is None:
        return request
    try:
        return decode(request)
    except DecodeError as e:
        raise da_errors.InvalidRequest(f"malformed request message: {e}") from e


def _is_async_gen(behavior: Callable[..., Any]) -> bool:
    return inspect.isasyncgenfunction(behavior)


class ScopeInterceptor(grpc.aio.ServerInterceptor):
    """Runs every RPC's behaviour inside `self.scope(method, context, streaming=...)`, where
    `streaming` says whether the method streams its responses (a long-lived call). The error
    table's interceptor below and those of `da.api.interceptors` are all scopes."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        streaming = handler is not None and bool(handler.response_streaming)
        scope = functools.partial(self.scope, streaming=streaming)
        return wrap_handler(handler, handler_call_details.method, scope)

    def scope(self, method: str, context: ServicerContext[Any, Any], *, streaming: bool) -> Any:
        raise NotImplementedError


class ErrorInterceptor(ScopeInterceptor):
    """Applies `STATUS_TABLE` to every RPC of the server (the one place it is applied)."""

    def scope(self, method: str, context: ServicerContext[Any, Any], *, streaming: bool) -> Any:
        return error_scope(method, context)


def wrap_handler(
    handler: grpc.RpcMethodHandler | None, method: str, scope: Scope
) -> grpc.RpcMethodHandler:
    """`handler` with its behaviour run inside `scope` (None passes through: unknown method).

    The innermost wrapper takes over decoding unary requests (see `wrap_behavior`), so the outer
    scopes, the error table's among them, see a malformed payload as an `InvalidRequest`.
    """
    if handler is None:
        return None
    decode = None if handler.request_streaming else handler.request_deserializer
    wrapped = wrap_server_method_handler(
        lambda behavior: wrap_behavior(behavior, method, scope, decode), handler
    )
    return wrapped._replace(request_deserializer=None) if decode is not None else wrapped
