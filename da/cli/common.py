"""What every part of the `da` command shares: exit codes, log choices, `UsageError`."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
WAIT_CHOICES = ("included", "certified")


class UsageError(Exception):
    """A missing or malformed command-line or config-file setting (exit code 2)."""


def version() -> str:
    """The installed package's version (`da --version`)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("da-sampling")
    except PackageNotFoundError:
        return "unknown (not installed)"
