"""The fighter networks in numpy, and the browser weights file: inference without torch.

    from policies.numpy_policy import load_policy
    policy = load_policy("exported/policy.safetensors")    # or a train.py checkpoint (.pt)
    actions = policy.act(obs)                               # kind mlp: float32 (n, 30) -> int64 (n,)

    # kind lstm: the fighters' memory goes in and comes out, one row per fighter
    actions, state = policy.act(obs)                        # first decision of a match: fresh memory
    actions, state = policy.act(obs, state, reset=starts)   # later ones; rows True in starts start afresh

``load_policy`` gives a NumpyPolicy (policy.kind ``mlp``) or a NumpyRecurrentPolicy (``lstm``),
as the file says; ``policy.recurrent`` tells them apart and ``policy.observation`` names the
observation the network reads: ``basic`` (30 numbers), ``full`` (48) or None when unknown.

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
data) and ``"__metadata__"`` to string values:

=================== ===========================================================================
format              ``wrestling-arena-policy``
format_version      ``1`` (kind mlp only) or ``2`` (either kind); see below
kind                ``mlp`` or ``lstm``; files written before kinds existed lack it: mlp
observation         ``basic`` or ``full``; absent when unknown (a Gymnasium env's observation,
                    or a file written before observation kinds existed, whose 30 are basic)
obs_size            numbers per observation (30 basic, 48 full)
num_actions         10
hidden_size         width of the trunk (mlp) or of the LSTM cell and its state (lstm)
activation          ``relu``
trunk               JSON list of the Linear layers from the observation on, each followed by
                    the activation
core                kind lstm: the LSTM cell's name (``lstm``)
gates               kind lstm: ``ifgo``, the order of the cell's gate rows (torch's)
policy_head         the logits layer (``actor``), on the trunk's output (mlp) or on h (lstm)
value_head          the value layer (``critic``), likewise
fighter_id          the database fighter id (JSON null without one), model_version, global_step
=================== ===========================================================================

A layer ``name`` has ``name.weight`` of shape (out, in), as torch stores it, and ``name.bias``
of shape (out,); it computes ``W x + b``.

Kind mlp (policies.network.Policy), trunk ``network.0``, ``network.2``::

    x = relu(network.2(relu(network.0(obs))));  logits = actor(x);  value = critic(x)

Kind lstm (policies.network.RecurrentPolicy), trunk ``encoder.0``, cell ``lstm`` of size H
with ``lstm.weight_ih`` (4H, H), ``lstm.weight_hh`` (4H, H), ``lstm.bias_ih`` (4H,),
``lstm.bias_hh`` (4H,), and a state (h, c) of two (n, H) arrays carried from each decision to
the fighter's next::

    x = relu(encoder.0(obs))
    z = weight_ih x + bias_ih + weight_hh h + bias_hh       rows [0, H) [H, 2H) [2H, 3H) [3H, 4H)
    i, f, g, o = sigmoid(z_i), sigmoid(z_f), tanh(z_g), sigmoid(z_o)
    c' = f * c + i * g;  h' = o * tanh(c')
    logits = actor(h');  value = critic(h');  (h', c') is the next decision's state

The state is zeros at the first decision of a match (training also zeroes an eliminated
fighter's, whose observations are zeros).

Versions. A reader of version 1 (written before kind lstm) refuses any other version, and
would otherwise run an lstm file's encoder and heads as a one-layer MLP without noticing, as
their shapes fit. So an lstm file says 2, which such a reader refuses by name, while a
feed-forward file is still written as version 1, all it needs, so that those readers (a game
shipped with an older web/policy.js) keep reading new mlp exports. This code reads both.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from arena.spec import OBSERVATIONS
from common.files import atomic_write_bytes
from policies.torch_zip import WeightsError, read_torch_checkpoint

WEIGHTS_FORMAT = "wrestling-arena-policy"
WEIGHTS_FORMAT_VERSION = 2
"""The newest weights format version; this code reads every version up to it."""
FORMAT_VERSIONS = {"mlp": 1, "lstm": 2}
"""The version a file of each kind is written with: the first that has the kind (docstring, "Versions")."""
WEIGHTS_FILENAME = "policy.safetensors"
"""Name of the weights file in an export folder."""

TRUNK = ("network.0", "network.2")
"""The Linear layers of policies.network.Policy's shared trunk, each followed by a ReLU."""
ENCODER = ("encoder.0",)
"""The Linear layer of policies.network.RecurrentPolicy before its LSTM cell, followed by a ReLU."""
CORE = "lstm"
"""RecurrentPolicy's LSTM cell: ``lstm.weight_ih``, ``lstm.weight_hh``, ``lstm.bias_ih``, ``lstm.bias_hh``."""
GATES = "ifgo"
"""The order of the cell's gate rows: input, forget, cell (g), output, as torch's nn.LSTMCell."""
POLICY_HEAD = "actor"
VALUE_HEAD = "critic"

MAX_HEADER_BYTES = 1 << 20
"""A weights header is ~1 KB; a larger length field means the file is not one."""

HEADER_ALIGNMENT = 8
"""The data starts at a multiple of this, so readers can view it as float32 in place."""

CHECKPOINT_FORMAT = "wrestling-arena-agent"
"""policies.checkpoint.FORMAT (that module imports torch)."""


def network_metadata(kind: str, obs_size: int, num_actions: int, hidden_size: int) -> dict:
    """How a network of ``kind`` is laid out: the weights file's metadata and the export manifest's ``network``."""
    if kind not in FORMAT_VERSIONS:
        raise WeightsError(f"unknown policy kind {kind!r}; readable kinds: {', '.join(FORMAT_VERSIONS)}")
    layout = {"trunk": list(TRUNK)} if kind == "mlp" else {"trunk": list(ENCODER), "core": CORE, "gates": GATES}
    return {
        "kind": kind,
        "obs_size": int(obs_size),
        "num_actions": int(num_actions),
        "hidden_size": int(hidden_size),
        "activation": "relu",
        **layout,
        "policy_head": POLICY_HEAD,
        "value_head": VALUE_HEAD,
    }


def weights_metadata(network: dict, observation: str | None, identity: dict) -> dict:
    """The ``__metadata__`` of a weights file for ``network`` (network_metadata's dict)."""
    seen = {"observation": observation} if observation is not None else {}
    version = FORMAT_VERSIONS[network["kind"]]
    return {"format": WEIGHTS_FORMAT, "format_version": version, **network, **seen, **identity}


class _Network:
    """What both networks share: the observation check, the trunk, the heads and the choice of action.

    Attributes: ``obs_size``, ``num_actions``, ``hidden_size``, ``observation`` (``basic``,
    ``full`` or None) and ``metadata`` (fighter_id, model_version and global_step when the file
    had them)."""

    kind: str
    recurrent: bool

    def _set_layers(self, trunk, policy_head, value_head, head_inputs: int | None) -> None:
        """Check and store the trunk (Linear + ReLU layers) and the heads, which take
        ``head_inputs`` numbers (None: what the trunk gives)."""
        for i, (w, b) in enumerate([*trunk, policy_head, value_head]):
            if w.ndim != 2 or b.shape != (w.shape[0],):
                raise WeightsError(f"layer {i}: weight {w.shape} and bias {b.shape} do not form a Linear layer")
        for i in range(1, len(trunk)):
            if trunk[i][0].shape[1] != trunk[i - 1][0].shape[0]:
                raise WeightsError(
                    f"trunk layer {i} takes {trunk[i][0].shape[1]} inputs, "
                    f"but layer {i - 1} gives {trunk[i - 1][0].shape[0]}"
                )
        width = trunk[-1][0].shape[0] if trunk else None
        given = head_inputs if head_inputs is not None else width
        source = "the trunk" if head_inputs is None else "the LSTM cell"
        for name, (w, _) in (("policy head", policy_head), ("value head", value_head)):
            if given is not None and w.shape[1] != given:
                raise WeightsError(f"the {name} takes {w.shape[1]} inputs, but {source} gives {given}")
        if value_head[0].shape[0] != 1:
            raise WeightsError(f"the value head must have one output, has {value_head[0].shape[0]}")
        # x @ W.T as a product with a contiguous transposed copy: one sgemm per layer.
        self._trunk = [(_f32(w.T), _f32(b)) for w, b in trunk]
        self._policy = (_f32(policy_head[0].T), _f32(policy_head[1]))
        self._value = (_f32(value_head[0].T), _f32(value_head[1]))
        self.num_actions = int(policy_head[0].shape[0])
        self._trunk_width = width

    def _observations(self, obs) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.obs_size:
            reads = f" (this network reads the {self.observation} observation)" if self.observation else ""
            raise ValueError(f"observations must have shape (n, {self.obs_size}), got {x.shape}{reads}")
        return x

    def _trunk_forward(self, x: np.ndarray) -> np.ndarray:
        for w, b in self._trunk:
            x = x @ w
            x += b
            np.maximum(x, 0.0, out=x)
        return x

    def _heads(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits = x @ self._policy[0]
        logits += self._policy[1]
        values = x @ self._value[0]
        values += self._value[1]
        return logits, values[:, 0]

    @staticmethod
    def _check_rng(greedy: bool, rng) -> None:
        if not greedy and rng is None:
            raise ValueError("sampling needs rng=np.random.default_rng(seed)")

    @staticmethod
    def _choose(logits: np.ndarray, greedy: bool, rng) -> np.ndarray:
        """The argmax of each row, or one categorical sample per row drawn with ``rng``
        (Gumbel-max, as policies.network.sample_actions)."""
        if greedy:
            return logits.argmax(axis=1)
        noise = np.maximum(rng.random(logits.shape), 1e-20)
        return (logits - np.log(-np.log(noise))).argmax(axis=1)

    def _head_names(self, out: dict) -> dict:
        for name, (w, b) in ((POLICY_HEAD, self._policy), (VALUE_HEAD, self._value)):
            out[f"{name}.weight"], out[f"{name}.bias"] = np.ascontiguousarray(w.T), b
        return out


class NumpyPolicy(_Network):
    """The actor-critic MLP of policies.network.Policy (kind mlp), evaluated with numpy in float32.

    ``trunk``: [(weight (out, in), bias (out,)), ...], a ReLU after each; ``policy_head`` and
    ``value_head``: (weight, bias) on the trunk's output.
    """

    kind = "mlp"
    recurrent = False

    def __init__(self, trunk, policy_head, value_head, metadata: dict | None = None, observation: str | None = None):
        self.metadata = dict(metadata or {})
        self.observation = observation
        self._set_layers(trunk, policy_head, value_head, None)
        self.obs_size = int((trunk[0] if trunk else policy_head)[0].shape[1])
        self.hidden_size = int(self._trunk_width) if self._trunk_width is not None else 0

    @classmethod
    def from_state_dict(
        cls,
        state_dict: dict,
        metadata: dict | None = None,
        trunk=TRUNK,
        policy_head: str = POLICY_HEAD,
        value_head: str = VALUE_HEAD,
        observation: str | None = None,
    ) -> NumpyPolicy:
        """Build from numpy arrays named like policies.network.Policy's state_dict."""
        layer = _layer_reader(state_dict)
        return cls([layer(n) for n in trunk], layer(policy_head), layer(value_head), metadata, observation)

    def forward(self, obs) -> tuple[np.ndarray, np.ndarray]:
        """Action logits (n, num_actions) and values (n,), float32, for observations (n, obs_size)."""
        return self._heads(self._trunk_forward(self._observations(obs)))

    def act(self, obs, greedy: bool = True, rng: np.random.Generator | None = None) -> np.ndarray:
        """Actions (int64, (n,)): the argmax of the logits, or one categorical sample per row
        drawn with ``rng`` (Gumbel-max, as policies.network.sample_actions)."""
        self._check_rng(greedy, rng)
        return self._choose(self.forward(obs)[0], greedy, rng)

    def state_dict(self, trunk=TRUNK) -> dict[str, np.ndarray]:
        """The weights under their torch names (weights (out, in), as torch stores them)."""
        out = {}
        for name, (w, b) in zip(trunk, self._trunk, strict=True):
            out[f"{name}.weight"], out[f"{name}.bias"] = np.ascontiguousarray(w.T), b
        return self._head_names(out)


class NumpyRecurrentPolicy(_Network):
    """policies.network.RecurrentPolicy (kind lstm) in numpy float32: trunk (Linear + ReLU
    layers), an LSTM cell, then the heads on its h. The module docstring has the equations.

    ``lstm``: (weight_ih (4H, in), weight_hh (4H, H), bias_ih (4H,), bias_hh (4H,)), gate rows
    in torch's order (input, forget, cell, output). Every call takes the fighters' state (h, c),
    two float32 arrays (n, H), and returns the new one; ``state=None`` is fresh memory (zeros)
    and ``reset`` (n,) bool zeroes the rows marked True first, as RecurrentPolicy's.
    """

    kind = "lstm"
    recurrent = True

    def __init__(
        self,
        trunk,
        lstm,
        policy_head,
        value_head,
        metadata: dict | None = None,
        observation: str | None = None,
    ):
        self.metadata = dict(metadata or {})
        self.observation = observation
        weight_ih, weight_hh, bias_ih, bias_hh = (np.asarray(a) for a in lstm)
        if weight_hh.ndim != 2 or weight_hh.shape[0] != 4 * weight_hh.shape[1]:
            raise WeightsError(f"the LSTM cell's weight_hh must be (4H, H), is {weight_hh.shape}")
        hidden = weight_hh.shape[1]
        self._set_layers(trunk, policy_head, value_head, hidden)
        inputs = self._trunk_width if trunk else None
        if weight_ih.ndim != 2 or weight_ih.shape[0] != 4 * hidden or inputs not in (None, weight_ih.shape[1]):
            raise WeightsError(
                f"the LSTM cell's weight_ih must be ({4 * hidden}, {inputs or 'inputs'}) for a cell of {hidden} "
                f"after a trunk giving {inputs}, is {weight_ih.shape}"
            )
        for name, b in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
            if b.shape != (4 * hidden,):
                raise WeightsError(f"the LSTM cell's {name} must be ({4 * hidden},), is {b.shape}")
        self._w_ih, self._w_hh = _f32(weight_ih.T), _f32(weight_hh.T)
        self._b_ih, self._b_hh = _f32(bias_ih), _f32(bias_hh)
        self.obs_size = int((trunk[0][0] if trunk else weight_ih).shape[1])
        self.hidden_size = int(hidden)

    @classmethod
    def from_state_dict(
        cls,
        state_dict: dict,
        metadata: dict | None = None,
        trunk=ENCODER,
        core: str = CORE,
        policy_head: str = POLICY_HEAD,
        value_head: str = VALUE_HEAD,
        observation: str | None = None,
    ) -> NumpyRecurrentPolicy:
        """Build from numpy arrays named like policies.network.RecurrentPolicy's state_dict."""
        layer = _layer_reader(state_dict)
        lstm = [_tensor(state_dict, f"{core}.{part}") for part in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        return cls([layer(n) for n in trunk], lstm, layer(policy_head), layer(value_head), metadata, observation)

    def initial_state(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Fresh memory for n fighters: (h, c), float32 zeros of shape (n, hidden_size)."""
        return np.zeros((n, self.hidden_size), np.float32), np.zeros((n, self.hidden_size), np.float32)

    def forward(self, obs, state=None, reset=None) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """One decision of n fighters: logits (n, num_actions), values (n,) and the new state (h, c)."""
        x = self._trunk_forward(self._observations(obs))
        h, c = self._state(state, len(x), reset)
        z = x @ self._w_ih
        z += self._b_ih
        z += h @ self._w_hh
        z += self._b_hh
        H = self.hidden_size
        i, f, o = _sigmoid(z[:, :H]), _sigmoid(z[:, H : 2 * H]), _sigmoid(z[:, 3 * H :])
        c = f * c + i * np.tanh(z[:, 2 * H : 3 * H])
        h = o * np.tanh(c)
        logits, values = self._heads(h)
        return logits, values, (h, c)

    def act(self, obs, state=None, greedy: bool = True, rng: np.random.Generator | None = None, reset=None):
        """Actions (int64, (n,)) as NumpyPolicy.act chooses them, and the new state (h, c)."""
        self._check_rng(greedy, rng)
        logits, _, state = self.forward(obs, state, reset)
        return self._choose(logits, greedy, rng), state

    def _state(self, state, n: int, reset) -> tuple[np.ndarray, np.ndarray]:
        if reset is not None:
            reset = np.asarray(reset)
            if reset.shape != (n,):
                raise ValueError(f"reset must be one flag per observation, shape ({n},), got {reset.shape}")
        if state is None:
            return self.initial_state(n)
        want = (n, self.hidden_size)
        if not isinstance(state, tuple | list) or len(state) != 2:
            raise ValueError(
                f"state must be the (h, c) pair forward or act returned, each of shape {want} (None: fresh memory)"
            )
        h, c = (np.asarray(part, dtype=np.float32) for part in state)
        if h.shape != want or c.shape != want:
            raise ValueError(
                f"state (h, c) must be two arrays of shape {want}, one row per observation, got {h.shape} and {c.shape}"
            )
        if reset is not None:
            keep = ~reset.astype(bool)[:, None]
            h, c = h * keep, c * keep
        return h, c

    def state_dict(self, trunk=ENCODER, core: str = CORE) -> dict[str, np.ndarray]:
        """The weights under their torch names (weights (out, in), as torch stores them)."""
        out = {}
        for name, (w, b) in zip(trunk, self._trunk, strict=True):
            out[f"{name}.weight"], out[f"{name}.bias"] = np.ascontiguousarray(w.T), b
        out[f"{core}.weight_ih"] = np.ascontiguousarray(self._w_ih.T)
        out[f"{core}.weight_hh"] = np.ascontiguousarray(self._w_hh.T)
        out[f"{core}.bias_ih"], out[f"{core}.bias_hh"] = self._b_ih, self._b_hh
        return self._head_names(out)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function in float32 without exp's overflow: 1 / (1 + e^-x) = (1 + tanh(x / 2)) / 2."""
    return 0.5 * np.tanh(0.5 * x) + 0.5


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _tensor(state_dict: dict, name: str) -> np.ndarray:
    try:
        return np.asarray(state_dict[name])
    except KeyError:
        raise WeightsError(f"the weights lack {name!r} (found {sorted(state_dict)})") from None


def _layer_reader(state_dict: dict):
    def layer(name):
        return _tensor(state_dict, f"{name}.weight"), _tensor(state_dict, f"{name}.bias")

    return layer


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


def policy_from_weights(path) -> NumpyPolicy | NumpyRecurrentPolicy:
    """The policy in a weights file, of the kind its metadata says; WeightsError says what is wrong."""
    tensors, meta = read_weights(path)
    shown = str(path)
    if meta.get("format") != WEIGHTS_FORMAT:
        raise WeightsError(
            f"{shown!r} is a safetensors file but not a {WEIGHTS_FORMAT} one (metadata format {meta.get('format')!r})"
        )
    readable = [str(v) for v in range(1, WEIGHTS_FORMAT_VERSION + 1)]
    version = meta.get("format_version")
    if version not in readable:
        raise WeightsError(
            f"{shown!r} has weights format version {version!r}; this code reads {' and '.join(readable)}"
        )
    if int(version) > 1 and "kind" not in meta:
        raise WeightsError(f"{shown!r}: weights format version {version} names its network's kind, this file does not")
    kind = meta.get("kind", "mlp")
    _check_kind(kind, shown)
    if int(version) < FORMAT_VERSIONS[kind]:
        raise WeightsError(
            f"{shown!r} is inconsistent: a {kind} network needs weights format version {FORMAT_VERSIONS[kind]}, "
            f"the file says {version} (which older readers would run as another network); export it again "
            "with python -m policies.export"
        )
    if meta.get("activation", "relu") != "relu":
        raise WeightsError(f"{shown!r} uses activation {meta['activation']!r}; only relu is supported")
    try:
        trunk = json.loads(meta.get("trunk", json.dumps(TRUNK if kind == "mlp" else ENCODER)))
    except json.JSONDecodeError:
        raise WeightsError(f"{shown!r}: metadata trunk {meta['trunk']!r} is not a JSON list") from None
    if not isinstance(trunk, list) or not all(isinstance(name, str) for name in trunk):
        raise WeightsError(f"{shown!r}: metadata trunk {meta['trunk']!r} is not a JSON list of layer names")
    heads = meta.get("policy_head", POLICY_HEAD), meta.get("value_head", VALUE_HEAD)
    observation = meta.get("observation", _observation_before_kinds(tensors, trunk))
    try:
        if kind == "mlp":
            policy = NumpyPolicy.from_state_dict(tensors, _identity(meta), trunk, *heads, observation)
        else:
            if meta.get("gates", GATES) != GATES:
                raise WeightsError(
                    f"the LSTM gates are in the order {meta['gates']!r}; this code reads {GATES!r} (torch's)"
                )
            core = meta.get("core", CORE)
            policy = NumpyRecurrentPolicy.from_state_dict(tensors, _identity(meta), trunk, core, *heads, observation)
    except WeightsError as e:
        raise WeightsError(f"{shown!r}: {e}") from None
    _check_described(policy, meta, shown)
    return policy


def _check_kind(kind, shown: str) -> None:
    if kind not in FORMAT_VERSIONS:
        raise WeightsError(
            f"{shown!r} holds a network of kind {kind!r}; this code reads {', '.join(FORMAT_VERSIONS)} "
            "(a newer export than this code?)"
        )


def _check_described(policy, described: dict, shown: str) -> None:
    """The network's sizes and observation agree with what the file says about them."""
    for key in ("obs_size", "num_actions", "hidden_size"):
        if key in described and str(described[key]) != str(getattr(policy, key)):
            raise WeightsError(
                f"{shown!r} is inconsistent: it says {key} {described[key]}, its weights have {getattr(policy, key)}"
            )
    observation = policy.observation
    if observation is None:
        return
    if observation not in OBSERVATIONS:
        raise WeightsError(f"{shown!r} says observation {observation!r}, which is none of {', '.join(OBSERVATIONS)}")
    if OBSERVATIONS[observation] != policy.obs_size:
        raise WeightsError(
            f"{shown!r} is inconsistent: the {observation} observation has {OBSERVATIONS[observation]} numbers, "
            f"its network reads {policy.obs_size}"
        )


def _observation_before_kinds(tensors: dict, trunk: list) -> str | None:
    """The observation of a file written before files named it: the basic one, the only one then,
    when the network reads 30 numbers (else a Gymnasium env's, unknown)."""
    first = tensors.get(f"{trunk[0]}.weight") if trunk else None
    return "basic" if first is not None and first.ndim == 2 and first.shape[1] == OBSERVATIONS["basic"] else None


def _identity(meta: dict) -> dict:
    out = {}
    for key in ("fighter_id", "model_version", "global_step"):
        try:
            out[key] = json.loads(meta[key]) if key in meta else None
        except json.JSONDecodeError:
            out[key] = None
    return out


# ---------------------------------------------------------------------------- any policy file


def load_policy(path) -> NumpyPolicy | NumpyRecurrentPolicy:
    """The policy in a weights file or a train.py checkpoint (.pt), without torch: a NumpyPolicy
    for kind mlp, a NumpyRecurrentPolicy for kind lstm.

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
        return _policy_from_checkpoint(path)
    return policy_from_weights(path)


def _policy_from_checkpoint(path: Path) -> NumpyPolicy | NumpyRecurrentPolicy:
    shown = str(path)
    data = read_torch_checkpoint(path, keep=("state_dict",))
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise WeightsError(f"{shown!r} is a torch file but not a {CHECKPOINT_FORMAT} checkpoint")
    state_dict = data.get("state_dict")
    if not isinstance(state_dict, dict) or not all(isinstance(v, np.ndarray) for v in state_dict.values()):
        raise WeightsError(f"{shown!r}: the checkpoint's state_dict is missing or holds non-tensors")
    spec = data.get("policy")
    spec = spec if isinstance(spec, dict) else {}
    kind = spec.get("kind", "mlp")  # checkpoints written before policy.kind existed are mlp
    _check_kind(kind, shown)
    meta = {k: data.get(k) for k in ("fighter_id", "model_version", "global_step")}
    first = ENCODER[0] if kind == "lstm" else TRUNK[0]
    observation = data["observation"] if "observation" in data else _observation_before_kinds(state_dict, [first])
    try:
        if kind == "mlp":
            policy = NumpyPolicy.from_state_dict(state_dict, meta, observation=observation)
        else:
            policy = NumpyRecurrentPolicy.from_state_dict(state_dict, meta, observation=observation)
    except WeightsError as e:
        raise WeightsError(f"{shown!r}: {e}") from None
    _check_described(policy, spec, shown)
    return policy
