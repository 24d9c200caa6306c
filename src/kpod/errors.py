"""Errors kpod reports to users. The CLI prints them without a traceback."""

from __future__ import annotations


class KpodError(Exception):
    """A problem the user can fix: bad input, a missing file, an invalid setting."""


class DataError(KpodError):
    """Bad input data, located by file, line and field."""

    def __init__(self, message: str, *, path: object = None, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field = path, line, field
        where = [str(p) for p in (path,) if p is not None]
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class ConfigError(KpodError):
    """An invalid configuration key or value."""
