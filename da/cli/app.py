"""`main`: parse the command line, set up logging, run the command's handler, map failures to
exit codes (0 success, 1 runtime or RPC failure, 2 usage or configuration error).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

import grpc

from da.api.client import describe_rpc_error
from da.cli import nodes, roles
from da.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, LOG_DATE_FORMAT, LOG_FORMAT, UsageError
from da.cli.parser import build_parser
from da.config import ConfigError
from da.errors import DAError, KeyFileError
from erasure.errors import ErasureError

log = logging.getLogger("da")

# What each subcommand runs (the parser names them by `handler`).
HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "role": roles.cmd_role,
    "keygen": roles.cmd_keygen,
    "blob_submit": nodes.cmd_blob_submit,
    "blob_status": nodes.cmd_blob_status,
    "blob_get": nodes.cmd_blob_get,
    "header_get": nodes.cmd_header_get,
    "certificate_get": nodes.cmd_certificate_get,
    "availability": nodes.cmd_availability,
    "health": nodes.cmd_health,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `da` console script; returns the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or an argparse usage error (2)
        return int(e.code or 0)
    setup_logging(getattr(args, "log_level", "info"), getattr(args, "log_format", "text"))
    try:
        return int(HANDLERS[args.handler](args))
    except (UsageError, ConfigError, KeyFileError) as e:
        return _fail(EXIT_USAGE, str(e))
    except grpc.aio.AioRpcError as e:
        return _fail(EXIT_FAILURE, f"RPC failed: {describe_rpc_error(e)}")
    except (DAError, ErasureError, OSError) as e:
        return _fail(EXIT_FAILURE, str(e))
    except KeyboardInterrupt:
        return EXIT_OK


def _fail(code: int, message: str) -> int:
    print(f"da: error: {message}", file=sys.stderr)
    return code


def setup_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATE_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the traceback, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": self.formatTime(record, LOG_DATE_FORMAT),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document)
