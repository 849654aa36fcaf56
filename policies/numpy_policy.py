"""The fighter network in numpy, and the browser weights file: inference without torch.

    from policies.numpy_policy import load_policy
    policy = load_policy("exported/policy.safetensors")    # or a train.py checkpoint (.pt)
    actions = policy.act(obs)                               # float32 (n, 30) -> int64 (n,)

Used by the ingest server's ``POST /api/fighters/{id}/act``, which must not import torch,
and by ``python -m policies.export``, which writes the weights file.

The weights file is a safetensors file (https://huggingface.co/docs/safetensors), written
and read here without the safetensors package:

========================= ===============================================================
bytes                     contents
========================= ===============================================================
0-7                       N: header length, unsigned 64-bit little-endian
8 .. 8+N                  header: UTF-8 JSON, padded with spaces so the data starts at a
                          multiple of 8
8+N ..                    the tensors: float32 little-endian, row-major, back to back
========================= ===============================================================

The header maps each tensor name (the torch state_dict key) to
``{"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}`` (byte offsets into the
data) and ``"__metadata__"`` to string values: ``format`` (``wrestling-arena-policy``),
``format_version``, ``obs_size``, ``num_actions``, ``hidden_size``, ``activation``
(``relu``), ``trunk`` (JSON list of the trunk's Linear layer names, each followed by the
activation), ``policy_head`` and ``value_head`` (layer names), ``fighter_id``,
``model_version``, ``global_step``. A layer ``name`` has ``name.weight`` of shape
(out, in), as torch stores it, and ``name.bias`` of shape (out,).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from common.files import atomic_write_bytes
from policies.torch_zip import WeightsError, read_torch_checkpoint

WEIGHTS_FORMAT = "wrestling-arena-policy"
WEIGHTS_FORMAT_VERSION = 1
WEIGHTS_FILENAME = "policy.safetensors"
"""Name of the weights file in an export folder."""

TRUNK = ("network.0", "network.2")
"""The Linear layers of policies.network.Policy's shared trunk, each followed by a ReLU."""
POLICY_HEAD = "actor"
VALUE_HEAD = "critic"

MAX_HEADER_BYTES = 1 << 20
"""A weights header is ~1 KB; a larger length field means the file is not one."""

HEADER_ALIGNMENT = 8
"""The data starts at a multiple of this, so readers can view it as float32 in place."""


class NumpyPolicy:
    """The actor-critic MLP of policies.network.Policy, evaluated with numpy in float32.

    ``trunk``: [(weight (out, in), bias (out,)), ...], a ReLU after each; ``policy_head`` and
    ``value_head``: (weight, bias) on the trunk's output. ``metadata`` holds fighter_id,
    model_version and global_step when the file had them.
    """

    def __init__(self, trunk, policy_head, value_head, metadata: dict | None = None):
        self.metadata = dict(metadata or {})
        layers = [*trunk, policy_head, value_head]
        for i, (w, b) in enumerate(layers):
            if w.ndim != 2 or b.shape != (w.shape[0],):
                raise WeightsError(f"layer {i}: weight {w.shape} and bias {b.shape} do not form a Linear layer")
        for i in range(1, len(trunk)):
            if trunk[i][0].shape[1] != trunk[i - 1][0].shape[0]:
                raise WeightsError(
                    f"trunk layer {i} takes {trunk[i][0].shape[1]} inputs, "
                    f"but layer {i - 1} gives {trunk[i - 1][0].shape[0]}"
                )
        width = trunk[-1][0].shape[0] if trunk else None
        for name, (w, _) in (("policy head", policy_head), ("value head", value_head)):
            if width is not None and w.shape[1] != width:
                raise WeightsError(f"the {name} takes {w.shape[1]} inputs, but the trunk gives {width}")
        if value_head[0].shape[0] != 1:
            raise WeightsError(f"the value head must have one output, has {value_head[0].shape[0]}")
        # x @ W.T as a product with a contiguous transposed copy: one sgemm per layer.
        self._trunk = [(_f32(w.T), _f32(b)) for w, b in trunk]
        self._policy = (_f32(policy_head[0].T), _f32(policy_head[1]))
        self._value = (_f32(value_head[0].T), _f32(value_head[1]))
        self.obs_size = int(layers[0][0].shape[1])
        self.num_actions = int(policy_head[0].shape[0])
        self.hidden_size = int(width) if width is not None else 0

    @classmethod
    def from_state_dict(
        cls,
        state_dict: dict,
        metadata: dict | None = None,
        trunk=TRUNK,
        policy_head: str = POLICY_HEAD,
        value_head: str = VALUE_HEAD,
    ) -> NumpyPolicy:
        """Build from numpy arrays named like policies.network.Policy's state_dict."""

        def layer(name):
            try:
                return np.asarray(state_dict[f"{name}.weight"]), np.asarray(state_dict[f"{name}.bias"])
            except KeyError as e:
                raise WeightsError(f"the weights lack {e.args[0]!r} (found {sorted(state_dict)})") from None

        return cls([layer(n) for n in trunk], layer(policy_head), layer(value_head), metadata)

    def forward(self, obs) -> tuple[np.ndarray, np.ndarray]:
        """Action logits (n, num_actions) and values (n,), float32, for observations (n, obs_size)."""
        x = np.asarray(obs, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.obs_size:
            raise ValueError(f"observations must have shape (n, {self.obs_size}), got {x.shape}")
        for w, b in self._trunk:
            x = x @ w
            x += b
            np.maximum(x, 0.0, out=x)
        logits = x @ self._policy[0]
        logits += self._policy[1]
        values = x @ self._value[0]
        values += self._value[1]
        return logits, values[:, 0]

    def act(self, obs, greedy: bool = True, rng: np.random.Generator | None = None) -> np.ndarray:
        """Actions (int64, (n,)): the argmax of the logits, or one categorical sample per row
        drawn with ``rng`` (Gumbel-max, as policies.network.sample_actions)."""
        logits, _ = self.forward(obs)
        if greedy:
            return logits.argmax(axis=1)
        if rng is None:
            raise ValueError("sampling needs rng=np.random.default_rng(seed)")
        noise = np.maximum(rng.random(logits.shape), 1e-20)
        return (logits - np.log(-np.log(noise))).argmax(axis=1)

    def state_dict(self, trunk=TRUNK) -> dict[str, np.ndarray]:
        """The weights under their torch names (weights (out, in), as torch stores them)."""
        out = {}
        for name, (w, b) in [
            *zip(trunk, self._trunk, strict=True),
            (POLICY_HEAD, self._policy),
            (VALUE_HEAD, self._value),
        ]:
            out[f"{name}.weight"], out[f"{name}.bias"] = np.ascontiguousarray(w.T), b
        return out


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


# ---------------------------------------------------------------------------- the weights file


def write_weights(path, state_dict: dict, metadata: dict) -> Path:
    """Write ``state_dict`` (name -> array) as a float32 safetensors file, atomically.

    Tensors keep the dict's order. ``metadata`` values are turned into strings (safetensors
    allows only strings there); lists and dicts as JSON.
    """
    tensors = {name: np.ascontiguousarray(np.asarray(a), dtype="<f4") for name, a in state_dict.items()}
    header, offset = {}, 0
    for name, a in tensors.items():
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    header["__metadata__"] = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % HEADER_ALIGNMENT)
    blob = b"".join([struct.pack("<Q", len(text)), text, *(a.tobytes() for a in tensors.values())])
    return atomic_write_bytes(path, blob)


def read_weights(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(tensors, metadata) of a safetensors file; WeightsError says what is wrong."""
    data = Path(path).read_bytes()
    shown = str(path)
    if len(data) < 8:
        raise WeightsError(f"{shown!r} is {len(data)} bytes long: too short to be a weights file")
    (n,) = struct.unpack_from("<Q", data)
    if n > MAX_HEADER_BYTES or 8 + n > len(data) or data[8:9] != b"{":
        raise WeightsError(
            f"{shown!r} is not a safetensors weights file (no JSON header at byte 8); "
            "write one with python -m policies.export"
        )
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WeightsError(f"{shown!r}: the header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{shown!r}: the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    body = memoryview(data)[8 + n :]
    dtypes = {"F32": "<f4", "F64": "<f8", "F16": "<f2"}
    tensors = {}
    for name, spec in header.items():
        try:
            dtype = np.dtype(dtypes[spec["dtype"]])
            shape = tuple(int(s) for s in spec["shape"])
            begin, end = (int(o) for o in spec["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise WeightsError(
                f"{shown!r}: tensor {name!r} has an unusable entry {spec!r} (dtype must be one of {sorted(dtypes)})"
            ) from None
        count = int(np.prod(shape)) if shape else 1
        if not 0 <= begin <= end <= len(body) or end - begin != count * dtype.itemsize:
            raise WeightsError(
                f"{shown!r}: tensor {name!r} {list(shape)} does not fit bytes {begin}-{end} "
                f"of {len(body)} (truncated or corrupt file)"
            )
        tensors[name] = np.frombuffer(body[begin:end], dtype=dtype).reshape(shape).astype(np.float32)
    return tensors, metadata


def policy_from_weights(path) -> NumpyPolicy:
    tensors, meta = read_weights(path)
    if meta.get("format") != WEIGHTS_FORMAT:
        raise WeightsError(
            f"{str(path)!r} is a safetensors file but not a {WEIGHTS_FORMAT} one "
            f"(metadata format {meta.get('format')!r})"
        )
    if meta.get("format_version") != str(WEIGHTS_FORMAT_VERSION):
        raise WeightsError(
            f"{str(path)!r} has weights format version {meta.get('format_version')!r}; "
            f"this code reads {WEIGHTS_FORMAT_VERSION}"
        )
    if meta.get("activation", "relu") != "relu":
        raise WeightsError(f"{str(path)!r} uses activation {meta['activation']!r}; only relu is supported")
    try:
        trunk = json.loads(meta.get("trunk", json.dumps(TRUNK)))
    except json.JSONDecodeError:
        raise WeightsError(f"{str(path)!r}: metadata trunk {meta['trunk']!r} is not a JSON list") from None
    policy = NumpyPolicy.from_state_dict(
        tensors, _identity(meta), trunk, meta.get("policy_head", POLICY_HEAD), meta.get("value_head", VALUE_HEAD)
    )
    for key, value in (("obs_size", policy.obs_size), ("num_actions", policy.num_actions)):
        if key in meta and meta[key] != str(value):
            raise WeightsError(f"{str(path)!r}: metadata says {key} {meta[key]}, the weights have {value}")
    return policy


def _identity(meta: dict) -> dict:
    out = {}
    for key in ("fighter_id", "model_version", "global_step"):
        try:
            out[key] = json.loads(meta[key]) if key in meta else None
        except json.JSONDecodeError:
            out[key] = None
    return out


# ---------------------------------------------------------------------------- any policy file


def load_policy(path) -> NumpyPolicy:
    """A NumpyPolicy from a weights file or a train.py checkpoint (.pt), without torch.

    Raises FileNotFoundError or WeightsError (subclass of ValueError) saying what is wrong.
    """
    path = Path(path)
    if path.is_dir():
        raise WeightsError(f"{str(path)!r} is a folder; give a checkpoint (.pt) or {WEIGHTS_FILENAME} file")
    if not path.is_file():
        raise FileNotFoundError(f"policy file {str(path)!r} does not exist")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"PK\x03\x04":  # torch.save's zip archive
        data = read_torch_checkpoint(path, keep=("state_dict",))
        if not isinstance(data, dict) or data.get("format") != "wrestling-arena-agent":
            raise WeightsError(f"{str(path)!r} is a torch file but not a wrestling-arena-agent checkpoint")
        state_dict = data.get("state_dict")
        if not isinstance(state_dict, dict) or not all(isinstance(v, np.ndarray) for v in state_dict.values()):
            raise WeightsError(f"{str(path)!r}: the checkpoint's state_dict is missing or holds non-tensors")
        meta = {k: data.get(k) for k in ("fighter_id", "model_version", "global_step")}
        return NumpyPolicy.from_state_dict(state_dict, meta)
    return policy_from_weights(path)
