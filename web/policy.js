/**
 * Wrestling Arena policy: a trained fighter choosing actions in the browser. No dependencies.
 *
 *   import { loadPolicy, createRng } from './policy.js';
 *   const policy = await loadPolicy('/fighters/aggression/policy.safetensors');
 *   const action = policy.actOne(observe(me, others));          // greedy, 0..9
 *   const actions = policy.act(rows);                           // Int32Array(n), greedy
 *   const rng = createRng(1234);
 *   const sampled = policy.act(rows, { greedy: false, rng });   // a seeded draw per row
 *
 * A recurrent fighter (policy.recurrent, kind lstm) remembers what it saw earlier in the
 * match: each fighter keeps a state, which every decision reads and updates in place.
 *
 *   fighter.memory = policy.createState();                      // at the start of every match
 *   const action = policy.actOne(observe(me, others), { state: fighter.memory });
 *   // or all AI fighters at once, one state row each:
 *   const memory = policy.createState(aiFighters.length);       // new match: or policy.resetState(memory)
 *   const actions = policy.act(rows, { state: memory });
 *   policy.resetState(memory, [i]);                             // fighter i alone starts a new match
 *
 * The weights file is the one `python -m policies.export CHECKPOINT --out DIR` writes
 * (DIR/policy.safetensors; format in policies/numpy_policy.py and docs/export.md).
 * Observations are rows of policy.obsSize numbers (30 for the basic observation, 48 for the
 * full one: policy.observation), computed as docs/arena.md says: a Float32Array (or an array
 * of numbers) of length n * obsSize, or an array of n arrays of obsSize.
 *
 * Arithmetic: weights and every layer's output are float32, as in torch; each dot product
 * is summed in float64 and then rounded to float32, so the logits are the float32 values
 * closest to the exact ones and differ from torch's (float32 sums) by about 1e-7 relative.
 * The LSTM's gate sums are rounded so too, its sigmoid and tanh are float64, and h and c are
 * stored as float32. Greedy actions therefore agree with Python's except where two logits tie
 * to within that.
 */

const FORMAT = 'wrestling-arena-policy';
/** The weights format version each kind needs: an lstm file says 2, which readers of version 1
 *  (older copies of this module) refuse instead of running it as an MLP; mlp files stay 1. */
const FORMAT_VERSIONS = { mlp: '1', lstm: '2' };
const READABLE_VERSIONS = ['1', '2'];
/** The Linear + ReLU layers before the heads (mlp) or the LSTM cell (lstm), when the file does not name them. */
const DEFAULT_TRUNKS = { mlp: ['network.0', 'network.2'], lstm: ['encoder.0'] };
/** The order of the LSTM cell's gate rows: input, forget, cell, output (torch's). */
const GATES = 'ifgo';
/** Numbers per observation of each kind (arena/spec.py OBSERVATIONS; docs/arena.md). */
const OBSERVATION_SIZES = { basic: 30, full: 48 };
/** Header lengths beyond this mean the file is not a weights file (ours are ~1 KB). */
const MAX_HEADER_BYTES = 1 << 20;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** A weights file that cannot be used, or observations or a state of the wrong shape. */
export class PolicyError extends Error {
  constructor(message) {
    super(message);
    this.name = 'PolicyError';
  }
}

/** Fetch and parse a policy.safetensors file. */
export async function loadPolicy(url, fetchOptions = {}) {
  let response;
  try {
    response = await fetch(url, fetchOptions);
  } catch (err) {
    throw new PolicyError(`could not fetch the policy ${url}: ${err.message}`);
  }
  if (!response.ok) {
    throw new PolicyError(`GET ${url} answered ${response.status}; serve the export folder's policy.safetensors`);
  }
  return parsePolicy(await response.arrayBuffer(), String(url));
}

/** A Policy from the bytes of a policy.safetensors file (an ArrayBuffer or a typed array). */
export function parsePolicy(buffer, source = 'the weights file') {
  const bytes = buffer instanceof ArrayBuffer ? new Uint8Array(buffer)
    : new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 8) throw new PolicyError(`${source} is ${bytes.length} bytes long: not a weights file`);
  const headerLength = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > bytes.length || bytes[8] !== 0x7b /* { */) {
    throw new PolicyError(`${source} is not a safetensors weights file; write one with python -m policies.export`);
  }
  let header;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  } catch (err) {
    throw new PolicyError(`${source}: the header is not valid JSON (${err.message})`);
  }
  const meta = header.__metadata__ || {};
  if (meta.format !== FORMAT) {
    throw new PolicyError(`${source} is not a ${FORMAT} file (metadata format ${JSON.stringify(meta.format)})`);
  }
  const version = meta.format_version;
  if (!READABLE_VERSIONS.includes(version)) {
    throw new PolicyError(`${source} has format version ${version}; this module reads ${READABLE_VERSIONS.join(' and ')}`);
  }
  if (version !== '1' && meta.kind === undefined) {
    throw new PolicyError(`${source}: format version ${version} names its network's kind, this file does not`);
  }
  const kind = meta.kind === undefined ? 'mlp' : meta.kind;
  if (!Object.hasOwn(FORMAT_VERSIONS, kind)) {
    const kinds = Object.keys(FORMAT_VERSIONS).join(', ');
    throw new PolicyError(`${source} holds a network of kind ${kind}; this module reads ${kinds}`);
  }
  if (Number(version) < Number(FORMAT_VERSIONS[kind])) {
    throw new PolicyError(`${source} is inconsistent: a ${kind} network needs format version ${FORMAT_VERSIONS[kind]}, ` +
      `the file says ${version}; export it again with python -m policies.export`);
  }
  if ((meta.activation || 'relu') !== 'relu') {
    throw new PolicyError(`${source} uses activation ${meta.activation}; only relu is supported`);
  }
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;

  function tensor(name) {
    const spec = header[name];
    if (!spec) throw new PolicyError(`${source} lacks the tensor ${name}`);
    if (spec.dtype !== 'F32') throw new PolicyError(`${source}: ${name} is ${spec.dtype}; expected F32`);
    const [begin, end] = spec.data_offsets;
    const count = spec.shape.reduce((a, b) => a * b, 1);
    if (!(begin >= 0 && end <= dataLength && end - begin === 4 * count)) {
      throw new PolicyError(`${source}: ${name} ${JSON.stringify(spec.shape)} does not fit its bytes (truncated file?)`);
    }
    const offset = bytes.byteOffset + dataStart + begin;
    if (LITTLE_ENDIAN && offset % 4 === 0) return { shape: spec.shape, data: new Float32Array(bytes.buffer, offset, count) };
    const data = new Float32Array(count); // unaligned or big-endian host: copy
    for (let i = 0; i < count; i++) data[i] = view.getFloat32(dataStart + begin + 4 * i, true);
    return { shape: spec.shape, data };
  }

  function layer(name) {
    const weight = tensor(`${name}.weight`);
    const bias = tensor(`${name}.bias`);
    if (weight.shape.length !== 2 || bias.shape.length !== 1 || bias.shape[0] !== weight.shape[0]) {
      throw new PolicyError(`${source}: ${name} has weight ${JSON.stringify(weight.shape)} and bias ` +
        `${JSON.stringify(bias.shape)}, not a Linear layer`);
    }
    return { name, out: weight.shape[0], in: weight.shape[1], weight: weight.data, bias: bias.data };
  }

  function lstmCell(name) {
    if ((meta.gates || GATES) !== GATES) {
      throw new PolicyError(`${source}: the LSTM gates are in the order ${meta.gates}; this module reads ${GATES} (torch's)`);
    }
    const parts = ['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'];
    const [weightIh, weightHh, biasIh, biasHh] = parts.map((part) => tensor(`${name}.${part}`));
    const hidden = weightHh.shape[1];
    const fits = weightHh.shape.length === 2 && weightHh.shape[0] === 4 * hidden && weightIh.shape.length === 2 &&
      weightIh.shape[0] === 4 * hidden && [biasIh, biasHh].every((b) => b.shape.length === 1 && b.shape[0] === 4 * hidden);
    if (!fits) {
      throw new PolicyError(`${source}: ${name} is not an LSTM cell (weight_ih ${JSON.stringify(weightIh.shape)}, ` +
        `weight_hh ${JSON.stringify(weightHh.shape)}: they must be (4H, inputs) and (4H, H), the biases (4H))`);
    }
    return {
      name, in: weightIh.shape[1], out: hidden, hidden,
      weightIh: weightIh.data, weightHh: weightHh.data, biasIh: biasIh.data, biasHh: biasHh.data,
    };
  }

  const trunk = (meta.trunk === undefined ? DEFAULT_TRUNKS[kind] : JSON.parse(meta.trunk)).map(layer);
  const cell = kind === 'lstm' ? lstmCell(meta.core || 'lstm') : null;
  const policyHead = layer(meta.policy_head || 'actor');
  const valueHead = layer(meta.value_head || 'critic');
  const chain = cell ? [...trunk, cell, policyHead] : [...trunk, policyHead];
  for (let i = 1; i < chain.length; i++) {
    if (chain[i].in !== chain[i - 1].out) {
      throw new PolicyError(`${source}: ${chain[i].name} takes ${chain[i].in} inputs but ${chain[i - 1].name} gives ${chain[i - 1].out}`);
    }
  }
  if (valueHead.out !== 1 || valueHead.in !== policyHead.in) {
    throw new PolicyError(`${source}: the value head ${valueHead.name} must map ${policyHead.in} inputs to 1`);
  }
  const obsSize = chain[0].in;
  // Files written before they named their observation read the basic one, the only one then.
  const observation = meta.observation === undefined ? (obsSize === OBSERVATION_SIZES.basic ? 'basic' : null)
    : meta.observation;
  if (observation !== null && OBSERVATION_SIZES[observation] !== obsSize) {
    throw new PolicyError(Object.hasOwn(OBSERVATION_SIZES, observation)
      ? `${source} is inconsistent: the ${observation} observation has ${OBSERVATION_SIZES[observation]} numbers, ` +
        `its network reads ${obsSize}`
      : `${source} says observation ${observation}, which is none of ${Object.keys(OBSERVATION_SIZES).join(', ')}`);
  }
  const number = (key) => (meta[key] === undefined ? null : JSON.parse(meta[key]));
  const info = {
    fighterId: number('fighter_id'), modelVersion: number('model_version'), globalStep: number('global_step'), observation,
  };
  return cell ? new RecurrentPolicy(trunk, cell, policyHead, valueHead, info) : new Policy(trunk, policyHead, valueHead, info);
}

/** The feed-forward fighter network (kind mlp): observations -> trunk (Linear + ReLU layers) -> logits and value. */
export class Policy {
  constructor(trunk, policyHead, valueHead, info = {}) {
    this.kind = 'mlp';
    this.recurrent = false;
    this.trunk = trunk;
    this.policyHead = policyHead;
    this.valueHead = valueHead;
    this.obsSize = trunk.length ? trunk[0].in : policyHead.in;
    this.numActions = policyHead.out;
    /** fighterId, modelVersion, globalStep from the export (null when unknown); observation:
     *  'basic' (30 numbers), 'full' (48) or null when unknown. */
    Object.assign(this, { fighterId: null, modelVersion: null, globalStep: null, observation: null }, info);
    const widest = Math.max(this.obsSize, ...trunk.map((l) => l.out));
    this._a = new Float32Array(widest);
    this._b = new Float32Array(widest);
  }

  /** Logits (Float32Array of n * numActions, row-major) and values (Float32Array of n). */
  forward(observations, { state = null } = {}) {
    if (state !== null && state !== undefined) {
      throw new PolicyError('this policy is feed-forward (kind mlp) and keeps no state: leave out { state }');
    }
    const obs = this._rows(observations);
    const n = obs.length / this.obsSize;
    const logits = new Float32Array(n * this.numActions);
    const values = new Float32Array(n);
    for (let r = 0; r < n; r++) {
      const hidden = this._trunkRow(obs, r * this.obsSize);
      linear(this.policyHead, hidden, 0, logits, r * this.numActions, false);
      linear(this.valueHead, hidden, 0, values, r, false);
    }
    return { n, logits, values };
  }

  /** One action per row (Int32Array): the argmax of the logits when greedy (the default),
   *  else a draw from softmax(logits) using rng, a function returning numbers in [0, 1).
   *  A recurrent policy also takes { state } (see RecurrentPolicy). */
  act(observations, { greedy = true, rng = null, state = null } = {}) {
    if (!greedy && typeof rng !== 'function') {
      throw new PolicyError('sampling needs an rng: policy.act(obs, { greedy: false, rng: createRng(seed) })');
    }
    const { n, logits } = this.forward(observations, { state });
    const actions = new Int32Array(n);
    const A = this.numActions;
    for (let r = 0; r < n; r++) {
      actions[r] = greedy ? argmax(logits, r * A, A) : sample(logits, r * A, A, rng());
    }
    return actions;
  }

  /** The action (a number) for one observation of obsSize numbers. */
  actOne(observation, options = {}) {
    if (!observation || observation.length !== this.obsSize) {
      const got = observation ? observation.length : observation;
      throw new PolicyError(`an observation has ${this._size()} for this policy, got ${got}`);
    }
    return this.act(observation, options)[0];
  }

  /** "48 numbers (the full observation)": what one observation is, for error messages. */
  _size() {
    return `${this.obsSize} numbers` + (this.observation ? ` (the ${this.observation} observation)` : '');
  }

  _trunkRow(obs, start) {
    let input = obs;
    let offset = start;
    let out = this._a;
    for (const layer of this.trunk) {
      linear(layer, input, offset, out, 0, true);
      input = out;
      offset = 0;
      out = out === this._a ? this._b : this._a;
    }
    return input === obs ? obs.subarray(start, start + this.obsSize) : input;
  }

  /** Observations as one Float32Array of n * obsSize finite numbers. */
  _rows(observations) {
    const size = this.obsSize;
    let flat;
    if (observations.length > 0 && typeof observations[0] === 'object' && observations[0] !== null) {
      flat = new Float32Array(observations.length * size);
      observations.forEach((row, r) => {
        if (!row || row.length !== size) {
          throw new PolicyError(`observations[${r}] has ${row ? row.length : row} numbers; each row has ${this._size()}`);
        }
        flat.set(row, r * size);
      });
    } else {
      flat = observations instanceof Float32Array ? observations : Float32Array.from(observations);
      if (flat.length % size !== 0) {
        throw new PolicyError(`${flat.length} numbers is not a whole number of observations of ${this._size()}`);
      }
    }
    for (let i = 0; i < flat.length; i++) {
      if (!Number.isFinite(flat[i])) {
        throw new PolicyError(`observation ${Math.floor(i / size)}, number ${i % size} is ${flat[i]}; ` +
          'observations must be finite (and fit float32)');
      }
    }
    return flat;
  }
}

/**
 * The recurrent fighter network (kind lstm): observations -> trunk (Linear + ReLU) -> an LSTM
 * cell -> logits and value on its h. policies/numpy_policy.py has the equations.
 *
 * Every call takes { state }: the memory of the fighters whose observations it gets, one row
 * each, made by createState(n) (zeros) and updated in place by the call. A fighter's memory
 * must start afresh at each match: a fresh createState, or resetState(state, [row]).
 */
export class RecurrentPolicy extends Policy {
  constructor(trunk, cell, policyHead, valueHead, info = {}) {
    super(trunk, policyHead, valueHead, info);
    this.kind = 'lstm';
    this.recurrent = true;
    this.cell = cell;
    this.hiddenSize = cell.hidden;
    if (!trunk.length) this.obsSize = cell.in;
    this._gates = new Float32Array(4 * cell.hidden);
  }

  /** Fresh memory for n fighters (default 1): { n, h, c }, two Float32Arrays of n * hiddenSize zeros. */
  createState(n = 1) {
    if (!(Number.isInteger(n) && n >= 1)) throw new PolicyError(`createState(n) needs a whole number of fighters >= 1, got ${n}`);
    return { n, h: new Float32Array(n * this.hiddenSize), c: new Float32Array(n * this.hiddenSize) };
  }

  /** Forget: zero the memory of the given rows (fighters starting a new match), or of every row. */
  resetState(state, rows = null) {
    this._checkState(state, state && state.n);
    const H = this.hiddenSize;
    for (const r of rows === null ? [...Array(state.n).keys()] : rows) {
      if (!(Number.isInteger(r) && r >= 0 && r < state.n)) {
        throw new PolicyError(`resetState: row ${r} is not one of the state's ${state.n} fighters`);
      }
      state.h.fill(0, r * H, (r + 1) * H);
      state.c.fill(0, r * H, (r + 1) * H);
    }
    return state;
  }

  /** Logits (Float32Array of n * numActions) and values (Float32Array of n); the state moves on. */
  forward(observations, { state = null } = {}) {
    const obs = this._rows(observations);
    const n = obs.length / this.obsSize;
    this._checkState(state, n);
    const logits = new Float32Array(n * this.numActions);
    const values = new Float32Array(n);
    const H = this.hiddenSize;
    for (let r = 0; r < n; r++) {
      lstm(this.cell, this._trunkRow(obs, r * this.obsSize), state.h, state.c, r * H, this._gates);
      const h = state.h.subarray(r * H, (r + 1) * H);
      linear(this.policyHead, h, 0, logits, r * this.numActions, false);
      linear(this.valueHead, h, 0, values, r, false);
    }
    return { n, logits, values };
  }

  _checkState(state, n) {
    if (!state || !(state.h instanceof Float32Array) || !(state.c instanceof Float32Array)) {
      throw new PolicyError('this policy is recurrent (kind lstm) and needs its memory: pass { state }, made by ' +
        'policy.createState(n) with one row per fighter and kept from decision to decision');
    }
    const H = this.hiddenSize;
    if (state.h.length !== state.n * H || state.c.length !== state.n * H) {
      throw new PolicyError(`the state does not fit this policy's ${H} hidden units: make it with this policy's createState`);
    }
    if (state.n !== n) {
      throw new PolicyError(`the state holds ${state.n} fighters, but ${n} observations of ${this._size()} came; ` +
        'give one state row per observation (policy.createState(n))');
    }
  }
}

/** One LSTM step of the row at h[offset ..], c[offset ..] with input x, in place (torch's nn.LSTMCell). */
function lstm(cell, x, h, c, offset, gates) {
  const { hidden: H, in: fanIn, weightIh, weightHh, biasIh, biasHh } = cell;
  for (let j = 0, wi = 0, wh = 0; j < 4 * H; j++, wi += fanIn, wh += H) {
    let sum = biasIh[j] + biasHh[j];
    for (let i = 0; i < fanIn; i++) sum += weightIh[wi + i] * x[i];
    for (let k = 0; k < H; k++) sum += weightHh[wh + k] * h[offset + k];
    gates[j] = sum; // rounded to float32
  }
  for (let k = 0; k < H; k++) {
    const input = sigmoid(gates[k]);
    const forget = sigmoid(gates[H + k]);
    const output = sigmoid(gates[3 * H + k]);
    c[offset + k] = forget * c[offset + k] + input * Math.tanh(gates[2 * H + k]);
    h[offset + k] = output * Math.tanh(c[offset + k]);
  }
}

function sigmoid(x) {
  return 1 / (1 + Math.exp(-x));
}

/** out[outOffset + o] = float32(bias[o] + sum_i weight[o, i] * x[xOffset + i]), then ReLU if asked. */
function linear(layer, x, xOffset, out, outOffset, relu) {
  const { weight, bias } = layer;
  const fanIn = layer.in;
  for (let o = 0, w = 0; o < layer.out; o++, w += fanIn) {
    let sum = bias[o];
    for (let i = 0; i < fanIn; i++) sum += weight[w + i] * x[xOffset + i];
    out[outOffset + o] = relu && sum < 0 ? 0 : sum;
  }
}

/** Index of the largest of values[start .. start + count); the first on ties, as torch and numpy. */
function argmax(values, start, count) {
  let best = 0;
  for (let k = 1; k < count; k++) if (values[start + k] > values[start + best]) best = k;
  return best;
}

/** Inverse-CDF draw from softmax(values[start .. start + count)) with u in [0, 1). */
function sample(values, start, count, u) {
  const top = values[start + argmax(values, start, count)];
  let total = 0;
  for (let k = 0; k < count; k++) total += Math.exp(values[start + k] - top);
  let threshold = u * total;
  let last = 0;
  for (let k = 0; k < count; k++) {
    const p = Math.exp(values[start + k] - top);
    if (p > 0) last = k;
    if (threshold < p) return k;
    threshold -= p;
  }
  return last; // u * total rounded past the sum: the last possible action
}

/** A seeded generator of numbers in [0, 1) (mulberry32): the same seed gives the same draws.
 *  It is not numpy's generator: sampled actions match Python's in distribution, not draw for draw. */
export function createRng(seed) {
  let state = Number(seed) >>> 0;
  return function next() {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
