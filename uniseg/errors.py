"""The one exception type users see: a one-line message naming the culprit and the fix.

The CLI turns every ``UnisegError`` into ``error: <message>`` on stderr and exit code 2.
"""

from __future__ import annotations


class UnisegError(Exception):
    """Bad input or state that the user can fix; ``str(err)`` is a complete one-line message."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} ({hint})")


class ConfigError(UnisegError):
    """A registry / artifact file is malformed: the message names file, line and key."""

    def __init__(self, path: object, message: str, *, line: int | None = None, key: str | None = None) -> None:
        where = str(path)
        if line is not None:
            where += f":{line}"
        if key:
            where += f": {key}"
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.key = path, line, key


class FingerprintMismatch(UnisegError):
    """An artifact was made for another union than the one in use."""


class Interrupted(UnisegError):
    """Ctrl-C during a long command; the message says how to carry on. Exit code 130 (128 + SIGINT)."""

    exit_code = 130

    def __init__(self, message: str = "interrupted — rerun the same command to resume") -> None:
        super().__init__(message)
