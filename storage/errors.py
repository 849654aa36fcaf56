"""Errors the storage layer raises for its callers.

Each class says what went wrong and whether repeating the same call may help:
``NotFoundError``, ``ConflictError``, ``FrameKindError`` and ``SchemaError`` fail again until something else
changes; ``BusyError`` may pass after a short wait; a plain ``StorageError`` (the store is
shutting down, the database refused or failed a write) says in its message what happened.
Invalid arguments raise ``ValueError`` instead. How a caller reports these errors is its own
business (the ingest server's mapping to HTTP statuses is ``ingest.errors``).
"""


class StorageError(Exception):
    """Base class of the errors below; raised as such when the store is shutting down or
    the database refused or failed a write (the message says which)."""


class SchemaError(StorageError):
    """The database file's schema cannot be used or migrated by this code. Retrying does
    not help: the file needs matching code, or was not written by this project."""


class NotFoundError(StorageError, LookupError):
    """A fighter, episode or checkpoint that the caller named does not exist. Retrying
    does not help until it has been created."""


class ConflictError(StorageError):
    """The write contradicts stored state, e.g. frames for a completed episode. Retrying
    does not help; nothing of the write was stored."""


class FrameKindError(StorageError, ValueError):
    """Frames whose observation_vector length is not the one their episode records (basic 30,
    full 48). Nothing of the write was stored; the same frames fail again."""


class BusyError(StorageError):
    """Another process held the write lock longer than the busy timeout. Nothing was
    written; the same call may succeed when retried after a short wait."""
