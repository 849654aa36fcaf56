"""The arena database: schema and migrations, sync access (training) and asyncio access (server).

from storage import Database
db = Database.open("data/arena.db")
fighter_id = db.register_fighter("fighter.glb", {"speed": 1.0})
"""

from .db import Database, FrameArrays, connect
from .errors import BusyError, ConflictError, NotFoundError, SchemaError, StorageError
from .records import OBSERVATION_SIZE, Frame
from .schema import SCHEMA_VERSION

__all__ = [
    "Database",
    "FrameArrays",
    "connect",
    "Frame",
    "OBSERVATION_SIZE",
    "SCHEMA_VERSION",
    "StorageError",
    "SchemaError",
    "NotFoundError",
    "ConflictError",
    "BusyError",
]
