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
 * The weights file is the one `python -m policies.export CHECKPOINT --out DIR` writes
 * (DIR/policy.safetensors; format in policies/numpy_policy.py and docs/export.md).
 * Observations are rows of 30 numbers, computed as docs/arena.md says: a Float32Array
 * (or an array of numbers) of length n * 30, or an array of n arrays of 30.
 *
 * Arithmetic: weights and every layer's output are float32, as in torch; each dot product
 * is summed in float64 and then rounded to float32, so the logits are the float32 values
 * closest to the exact ones and differ from torch's (float32 sums) by about 1e-7 relative.
 * Greedy actions therefore agree with Python's except where two logits tie to within that.
 */

const FORMAT = 'wrestling-arena-policy';
const FORMAT_VERSION = '1';
/** Header lengths beyond this mean the file is not a weights file (ours are ~1 KB). */
const MAX_HEADER_BYTES = 1 << 20;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** A weights file that cannot be used, or observations of the wrong shape. */
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
  if (meta.format_version !== FORMAT_VERSION) {
    throw new PolicyError(`${source} has format version ${meta.format_version}; this module reads ${FORMAT_VERSION}`);
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

  const trunk = JSON.parse(meta.trunk || '["network.0", "network.2"]').map(layer);
  const policyHead = layer(meta.policy_head || 'actor');
  const valueHead = layer(meta.value_head || 'critic');
  const chain = [...trunk, policyHead];
  for (let i = 1; i < chain.length; i++) {
    if (chain[i].in !== chain[i - 1].out) {
      throw new PolicyError(`${source}: ${chain[i].name} takes ${chain[i].in} inputs but ${chain[i - 1].name} gives ${chain[i - 1].out}`);
    }
  }
  if (valueHead.out !== 1 || valueHead.in !== policyHead.in) {
    throw new PolicyError(`${source}: the value head ${valueHead.name} must map ${policyHead.in} inputs to 1`);
  }
  const number = (key) => (meta[key] === undefined ? null : JSON.parse(meta[key]));
  return new Policy(trunk, policyHead, valueHead, {
    fighterId: number('fighter_id'), modelVersion: number('model_version'), globalStep: number('global_step'),
  });
}

/** The fighter network: observations -> trunk (Linear + ReLU layers) -> logits and value. */
export class Policy {
  constructor(trunk, policyHead, valueHead, info = {}) {
    this.trunk = trunk;
    this.policyHead = policyHead;
    this.valueHead = valueHead;
    this.obsSize = trunk.length ? trunk[0].in : policyHead.in;
    this.numActions = policyHead.out;
    /** fighterId, modelVersion, globalStep from the export (null when unknown). */
    Object.assign(this, info);
    const widest = Math.max(this.obsSize, ...trunk.map((l) => l.out));
    this._a = new Float32Array(widest);
    this._b = new Float32Array(widest);
  }

  /** Logits (Float32Array of n * numActions, row-major) and values (Float32Array of n). */
  forward(observations) {
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
   *  else a draw from softmax(logits) using rng, a function returning numbers in [0, 1). */
  act(observations, { greedy = true, rng = null } = {}) {
    if (!greedy && typeof rng !== 'function') {
      throw new PolicyError('sampling needs an rng: policy.act(obs, { greedy: false, rng: createRng(seed) })');
    }
    const { n, logits } = this.forward(observations);
    const actions = new Int32Array(n);
    const A = this.numActions;
    for (let r = 0; r < n; r++) {
      actions[r] = greedy ? argmax(logits, r * A, A) : sample(logits, r * A, A, rng());
    }
    return actions;
  }

  /** The action (a number) for one observation of 30 numbers. */
  actOne(observation, options = {}) {
    if (observation.length !== this.obsSize) {
      throw new PolicyError(`an observation has ${this.obsSize} numbers, got ${observation.length}`);
    }
    return this.act(observation, options)[0];
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
          throw new PolicyError(`observations[${r}] has ${row ? row.length : row} numbers; each row has ${size}`);
        }
        flat.set(row, r * size);
      });
    } else {
      flat = observations instanceof Float32Array ? observations : Float32Array.from(observations);
      if (flat.length % size !== 0) {
        throw new PolicyError(`${flat.length} numbers is not a whole number of observations of ${size}`);
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
