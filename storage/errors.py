"""Errors the storage layer raises for callers; the server maps them to HTTP statuses."""


class StorageError(Exception):
    """Base class of the errors below."""


class SchemaError(StorageError):
    """The database file's schema cannot be used or migrated by this code."""


class NotFoundError(StorageError, LookupError):
    """A fighter, episode or checkpoint that the caller named does not exist."""


class ConflictError(StorageError):
    """The write contradicts stored state, e.g. frames for a completed episode."""


class BusyError(StorageError):
    """Another process held the write lock longer than the busy timeout; retry later."""
