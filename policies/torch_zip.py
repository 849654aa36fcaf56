"""Read a ``torch.save`` checkpoint without torch: the ingest server serves train.py's .pt files.

Since torch 1.6, ``torch.save`` writes a zip archive::

    <name>/data.pkl        the pickled object; each tensor is a call to
                           torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)
                           and each storage a persistent id ("storage", torch.FloatStorage,
                           key, location, numel)
    <name>/data/<key>      the storage's raw bytes
    <name>/byteorder       "little" or "big"

The unpickler below resolves only the globals a checkpoint needs (OrderedDict, the tensor
rebuild function, the storage types) and turns every other global into an inert
placeholder, so no code from the file is ever run. Tensors come back as numpy arrays.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path

import numpy as np


class WeightsError(ValueError):
    """A file is not a readable policy: wrong kind, corrupt, or weights that do not fit."""


STORAGE_DTYPES = {
    "FloatStorage": "f4",
    "DoubleStorage": "f8",
    "HalfStorage": "f2",
    "BFloat16Storage": "u2",
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}
"""torch's legacy storage classes (still what torch.save pickles) and their element types;
bfloat16 is read as its 16 bits and widened to float32."""


class _StorageType:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"torch.{self.name}"


class _Storage:
    __slots__ = ("key", "dtype_name", "numel")

    def __init__(self, key: str, dtype_name: str, numel: int):
        self.key, self.dtype_name, self.numel = key, dtype_name, numel


class TensorRef:
    """A tensor not read into memory: where its numbers are, not the numbers."""

    __slots__ = ("storage", "offset", "shape", "stride")

    def __init__(self, storage: _Storage, offset: int, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, int(offset), tuple(shape), tuple(stride)

    def __repr__(self) -> str:
        return f"TensorRef({self.storage.dtype_name}, shape={self.shape})"


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, _Storage):
        raise WeightsError(f"a tensor refers to {type(storage).__name__}, not to a stored array")
    return TensorRef(storage, storage_offset, size, stride)


class _Opaque:
    """Stands in for any object a checkpoint holds outside the weights; keeps its arguments."""

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        obj.args, obj.state, obj.items = args, None, []
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state

    def __setitem__(self, key, value):
        self.items.append((key, value))

    def append(self, value):
        self.items.append(value)

    def extend(self, values):
        self.items.extend(values)

    def __repr__(self) -> str:
        return f"<{self.qualified_name} (not read)>"


_opaque_types: dict[str, type] = {}


def _opaque(module: str, name: str) -> type:
    qualified = f"{module}.{name}"
    if qualified not in _opaque_types:
        _opaque_types[qualified] = type(name, (_Opaque,), {"qualified_name": qualified})
    return _opaque_types[qualified]


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        return _opaque(module, name)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise WeightsError(f"unknown persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise WeightsError(
                f"storage {key!r} has an unsupported type {storage_type!r}; readable: {', '.join(STORAGE_DTYPES)}"
            )
        return _Storage(str(key), storage_type.name, int(numel))


def read_torch_checkpoint(path, keep=()) -> object:
    """The object a ``torch.save`` zip file holds, with the tensors under the top-level keys
    ``keep`` (of a dict) read as numpy arrays; other tensors stay ``TensorRef``s and other
    objects foreign to plain Python are placeholders. Raises WeightsError when unreadable."""
    path = Path(path)
    shown = str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(pickles) != 1:
                raise WeightsError("a zip file, but not a torch.save archive (it has no data.pkl)")
            prefix = pickles[0][: -len("data.pkl")]
            try:
                byteorder = archive.read(prefix + "byteorder").decode().strip()
            except KeyError:
                byteorder = "little"  # files written before torch recorded it
            with archive.open(pickles[0]) as f:
                data = _Unpickler(f).load()
            if isinstance(data, dict):
                cache: dict[str, np.ndarray] = {}
                for key in keep:
                    if key in data:
                        data[key] = _materialize(data[key], archive, prefix, byteorder, cache)
            return data
    except WeightsError as e:
        raise WeightsError(f"{shown!r}: {e}") from None
    except Exception as e:  # a corrupt archive or pickle can fail in any way
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(f"{shown!r} is not a readable checkpoint (corrupt or truncated): {first}") from None


def _materialize(obj, archive, prefix, byteorder, cache):
    if isinstance(obj, TensorRef):
        return _tensor(obj, archive, prefix, byteorder, cache)
    if isinstance(obj, dict):
        return type(obj)((k, _materialize(v, archive, prefix, byteorder, cache)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v, archive, prefix, byteorder, cache) for v in obj)
    return obj


def _tensor(ref: TensorRef, archive, prefix, byteorder, cache) -> np.ndarray:
    s = ref.storage
    if s.key not in cache:
        dtype = np.dtype(STORAGE_DTYPES[s.dtype_name]).newbyteorder("<" if byteorder == "little" else ">")
        raw = archive.read(f"{prefix}data/{s.key}")
        if len(raw) < s.numel * dtype.itemsize:
            raise WeightsError(f"storage {s.key} holds {len(raw)} bytes, {s.numel * dtype.itemsize} expected")
        flat = np.frombuffer(raw, dtype=dtype, count=s.numel)
        if s.dtype_name == "BFloat16Storage":
            flat = (flat.astype(np.uint32) << 16).view(np.float32)
        cache[s.key] = flat.astype(flat.dtype.newbyteorder("="))
    flat = cache[s.key]
    if any(n < 0 for n in ref.shape) or any(st < 0 for st in ref.stride) or len(ref.shape) != len(ref.stride):
        raise WeightsError(f"tensor of shape {ref.shape} has strides {ref.stride}")
    if 0 in ref.shape:
        return np.zeros(ref.shape, flat.dtype)
    last = ref.offset + sum((n - 1) * st for n, st in zip(ref.shape, ref.stride, strict=True))
    if ref.offset < 0 or last >= flat.size:
        raise WeightsError(f"tensor of shape {ref.shape} reaches element {last} of a storage of {flat.size}")
    view = np.lib.stride_tricks.as_strided(
        flat[ref.offset :], ref.shape, [st * flat.itemsize for st in ref.stride], writeable=False
    )
    return view.copy()
