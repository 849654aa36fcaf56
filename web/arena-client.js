/**
 * Wrestling Arena ingest client: a dependency-free ES module for the browser game.
 *
 *   import { configure, startEpisode, recordFrame, completeEpisode } from './arena-client.js';
 *   configure({ baseUrl: 'http://127.0.0.1:8001' });
 *   const episodeId = await startEpisode(fighterId, opponentIds);
 *   // or, frames carrying the full 48-number observation: startEpisode(fighterId, opponentIds, null, { observation: 'full' })
 *   recordFrame(episodeId, frame);            // every game tick; returns at once
 *   await completeEpisode(episodeId, { totalReward: 150, duration: 3000, isVictory: true, finalRank: 1 });
 *
 * Frames are buffered and sent in batches over one WebSocket per episode
 * (/api/episodes/{id}/stream). Each batch stays in memory until the server acknowledges
 * it (after its database commit); if the connection drops, the client reconnects with
 * backoff and resends every unacknowledged batch. The server ignores frames it already
 * has, so a resend never duplicates one. The backoff only resets once a batch is
 * acknowledged, and a batch that the server refuses, or that keeps the connection from
 * delivering anything, is given up after a few tries: reported through onError and in
 * completeEpisode's failedBatches, so a bad batch never blocks the episode. See docs/ingest.md.
 */

const DEFAULTS = {
  /** Server address (the game's page is usually served from another origin). */
  baseUrl: 'http://127.0.0.1:8001',
  /** Bearer token, when the server was started with --token. */
  token: null,
  /** Frames per WebSocket message: 30 frames is half a second at 60 fps. */
  batchSize: 30,
  /** A partial batch is sent after this long, so frames never wait long in the page. */
  flushIntervalMs: 250,
  /** Batches sent but not yet acknowledged, per episode (the server allows 8). */
  maxInflight: 8,
  /** Unacknowledged frames kept while the server is unreachable (~28 min at 60 fps);
   *  beyond it the oldest batch is dropped and reported through onError. */
  maxUnackedFrames: 100000,
  /** First reconnect delay; doubles up to maxReconnectDelayMs, with jitter, and goes back
   *  to the first only when the server acknowledges a batch (not when a socket opens). */
  reconnectDelayMs: 250,
  maxReconnectDelayMs: 5000,
  /** Connections a batch may be sent on that close before anything is acknowledged; then
   *  it is given up (onError, failedBatches) instead of being resent forever. */
  maxBatchAttempts: 5,
  /** completeEpisode waits this long for outstanding acknowledgements. */
  completeTimeoutMs: 30000,
  /** Called with an ArenaError for every batch the server refused or that was given up
   *  (err.seq, err.status: the HTTP status, or the WebSocket close code, or 0). */
  onError: (err) => console.warn('[arena-client]', err.message),
};

/** An error answered by the server (status 4xx/5xx) or met by the client (status 0). */
export class ArenaError extends Error {
  constructor(status, message, details = {}) {
    super(message);
    this.name = 'ArenaError';
    this.status = status;
    Object.assign(this, details);
  }
}

export class ArenaClient {
  constructor(options = {}) {
    this.options = { ...DEFAULTS, ...options };
    this.options.baseUrl = this.options.baseUrl.replace(/\/+$/, '');
    /** @type {Map<number, EpisodeStream>} */
    this.streams = new Map();
  }

  /** Register a fighter; answers the stored fighter ({id, glb_filename, ...}). */
  async registerFighter(glbFilename, metadata = {}, modelVersion = 0) {
    return this._request('POST', '/api/fighters',
      { glb_filename: glbFilename, metadata, model_version: modelVersion });
  }

  /** Open an episode for fighterId and its frame stream; answers the episode id.
   *  options.observation: 'basic' (default: observation_vector holds the game's 30 numbers) or
   *  'full' (48: also cooldowns and facings, as observeFull in observe.js computes them). */
  async startEpisode(fighterId, opponentIds = [], episodeNumber = undefined, options = {}) {
    const body = { fighter_id: fighterId, opponent_ids: opponentIds };
    if (episodeNumber !== undefined && episodeNumber !== null) body.episode_number = episodeNumber;
    if (options.observation !== undefined) body.observation = options.observation;
    const episode = await this._request('POST', '/api/episodes', body);
    const stream = new EpisodeStream(this, episode.id);
    this.streams.set(episode.id, stream);
    stream.connect();
    return episode.id;
  }

  /** Buffer one frame (the API's field names: frame_number, observation_vector, ...). */
  recordFrame(episodeId, frame) {
    this._stream(episodeId).record(frame);
  }

  /** Resolves once every frame recorded so far is committed on the server. */
  async flush(episodeId) {
    return this._stream(episodeId).drain(this.options.completeTimeoutMs);
  }

  /**
   * Send what is left, wait until all of it is committed (or given up), close the stream
   * and record the result. result: {totalReward, duration, isVictory, finalRank} (as the
   * game sends) or the API's {total_reward, duration_frames, is_victory, rank}. Answers the
   * episode, with `failedBatches`: the batches that were not stored, each
   * {seq, frames, firstFrame, lastFrame, status, message} (empty when all were).
   */
  async completeEpisode(episodeId, result) {
    const stream = this._stream(episodeId);
    await stream.drain(this.options.completeTimeoutMs);
    stream.close();
    this.streams.delete(episodeId);
    const pick = (...keys) => keys.map((k) => result[k]).find((v) => v !== undefined);
    const body = {
      total_reward: pick('total_reward', 'totalReward'),
      duration_frames: pick('duration_frames', 'duration', 'durationFrames'),
      is_victory: pick('is_victory', 'isVictory'),
    };
    const rank = pick('rank', 'finalRank');
    if (rank !== undefined && rank !== null) body.rank = rank;
    const episode = await this._request('PATCH', `/api/episodes/${episodeId}`, body);
    episode.failedBatches = stream.failedBatches.slice();
    return episode;
  }

  /** Counters of an episode's stream: recorded, acked, duplicates, pending, reconnects. */
  stats(episodeId) {
    return this._stream(episodeId).stats();
  }

  /** Close every stream without waiting (frames not yet acknowledged are lost). */
  close() {
    for (const stream of this.streams.values()) stream.close();
    this.streams.clear();
  }

  _stream(episodeId) {
    const stream = this.streams.get(episodeId);
    if (!stream) {
      throw new ArenaError(0, `episode ${episodeId} was not started by this client (call startEpisode first)`);
    }
    return stream;
  }

  async _request(method, path, body) {
    const headers = { 'content-type': 'application/json' };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    let response;
    try {
      response = await fetch(this.options.baseUrl + path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ArenaError(0, `${method} ${path}: server unreachable (${err.message})`);
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (!response.ok) {
      const reason = data && data.error ? data.error : text.slice(0, 200);
      throw new ArenaError(response.status, `${method} ${path}: ${response.status} ${reason}`);
    }
    return data;
  }

  _streamUrl(episodeId) {
    const url = new URL(`${this.options.baseUrl}/api/episodes/${episodeId}/stream`);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    if (this.options.token) url.searchParams.set('token', this.options.token);
    return url.toString();
  }
}

/** One episode's frame stream: buffering, batching, acknowledgements, reconnects. */
class EpisodeStream {
  constructor(client, episodeId) {
    this.client = client;
    this.opts = client.options;
    this.episodeId = episodeId;
    this.buffer = [];
    this.nextSeq = 0;
    /** seq -> {text, frames, firstFrame, lastFrame, attempts}, in seq order: sent or not, until acknowledged. */
    this.unacked = new Map();
    this.unackedFrames = 0;
    /** seqs sent on the current connection and not yet answered. */
    this.onWire = new Set();
    /** Batches not stored: refused by the server, or given up after maxBatchAttempts. */
    this.failedBatches = [];
    this.ws = null;
    this.open = false;
    this.closed = false;
    this.failed = null;
    this.timer = null;
    this.reconnectTimer = null;
    this.delayMs = this.opts.reconnectDelayMs;
    /** An ack came on the current connection. */
    this.progress = false;
    /** After a connection that acknowledged nothing, send only the oldest batch until it is. */
    this.probing = false;
    /** The next close is ours, for a server answering 503: not the batch's fault. */
    this.busy = false;
    this.waiters = [];
    this.counts = { recorded: 0, acked: 0, duplicates: 0, refused: 0, dropped: 0, reconnects: 0 };
    /** Connections opened for this stream; every one after the first is a reconnect. */
    this.connections = 0;
  }

  record(frame) {
    if (this.failed) { // already reported through onError; keep the game loop running
      this.counts.dropped += 1;
      return;
    }
    if (this.closed) throw new ArenaError(0, `episode ${this.episodeId} is completed or closed`);
    this.buffer.push(frame);
    this.counts.recorded += 1;
    if (this.buffer.length >= this.opts.batchSize) {
      this.flushBuffer();
    } else if (this.timer === null) {
      this.timer = setTimeout(() => this.flushBuffer(), this.opts.flushIntervalMs);
    }
  }

  flushBuffer() {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.buffer.length === 0) return;
    const seq = this.nextSeq++;
    const frames = this.buffer;
    this.buffer = [];
    this.unacked.set(seq, {
      text: JSON.stringify({ seq, frames }), frames: frames.length, attempts: 0,
      firstFrame: frames[0].frame_number, lastFrame: frames[frames.length - 1].frame_number,
    });
    this.unackedFrames += frames.length;
    while (this.unackedFrames > this.opts.maxUnackedFrames && this.unacked.size > 1) {
      const [oldSeq] = this.unacked.keys();
      this.giveUp(oldSeq, 0, `server unreachable too long; dropped batch ${oldSeq}`, 'dropped');
    }
    if (this.ws === null && this.reconnectTimer === null && !this.closed) {
      this.connect(); // the server closed an idle stream: reopen it now that there is something to send
    }
    this.pump();
  }

  /** Send unacknowledged batches, oldest first, up to maxInflight on the wire (1 while probing). */
  pump() {
    if (!this.open) return;
    const limit = this.probing ? 1 : this.opts.maxInflight;
    for (const [seq, batch] of this.unacked) {
      if (this.onWire.size >= limit) break;
      if (this.onWire.has(seq)) continue;
      this.onWire.add(seq);
      this.ws.send(batch.text);
    }
  }

  connect() {
    if (this.closed) return;
    if (this.connections > 0) this.counts.reconnects += 1; // after a drop, a refusal or an idle close
    this.connections += 1;
    const ws = new WebSocket(this.client._streamUrl(this.episodeId));
    this.ws = ws;
    ws.onopen = () => {
      this.open = true;
      this.progress = false; // the backoff is not reset here: only an ack resets it
      this.onWire.clear();
      this.pump();
    };
    ws.onmessage = (event) => this.onMessage(event.data);
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      const sent = [...this.onWire];
      this.open = false;
      this.ws = null;
      this.onWire.clear();
      if (this.closed) return;
      if (!this.progress && sent.length > 0 && !this.busy) this.noProgress(sent, event);
      this.busy = false;
      if (this.unacked.size > 0) this.scheduleReconnect();
    };
    ws.onerror = () => {}; // onclose follows
  }

  /** A connection closed having acknowledged nothing of what it was sent: the oldest batch
   *  may be what the server cannot take (too big, or it breaks the server). */
  noProgress(sent, event) {
    this.probing = true;
    const [oldest] = this.unacked.keys();
    const batch = this.unacked.get(oldest);
    if (batch === undefined || !sent.includes(oldest)) return;
    batch.attempts += 1;
    if (batch.attempts >= this.opts.maxBatchAttempts) {
      const why = event && event.code ? ` (close code ${event.code}${event.reason ? `: ${event.reason}` : ''})` : '';
      this.giveUp(oldest, event && event.code ? event.code : 0,
        `batch ${oldest} given up: ${batch.attempts} connections closed without acknowledging it${why}`, 'refused');
    }
  }

  /** Forget a batch that will not be stored; report it (onError, failedBatches). */
  giveUp(seq, status, message, counter) {
    const batch = this.unacked.get(seq);
    if (batch === undefined) return;
    this.unacked.delete(seq);
    this.onWire.delete(seq);
    this.unackedFrames -= batch.frames;
    this.counts[counter] += batch.frames;
    const err = new ArenaError(status, `episode ${this.episodeId}, ${message}`,
      { seq, episodeId: this.episodeId, frames: batch.frames });
    this.failedBatches.push({ seq, frames: batch.frames, firstFrame: batch.firstFrame,
      lastFrame: batch.lastFrame, status, message: err.message });
    this.opts.onError(err);
    this.settleWaiters();
  }

  scheduleReconnect() {
    if (this.reconnectTimer !== null || this.closed) return;
    const delay = this.delayMs * (0.75 + Math.random() / 2);
    this.delayMs = Math.min(this.delayMs * 2, this.opts.maxReconnectDelayMs);
    this.reconnectTimer = setTimeout(async () => {
      this.reconnectTimer = null;
      // A WebSocket refusal hides its HTTP status from page code: ask the REST API
      // whether the episode can still take frames before trying again.
      try {
        const episode = await this.client._request('GET', `/api/episodes/${this.episodeId}`);
        if (episode.status !== 'open') {
          return this.fail(new ArenaError(409, `episode ${this.episodeId} was completed elsewhere; `
            + `${this.unackedFrames} frames not stored`));
        }
      } catch (err) {
        if (err.status === 404) return this.fail(err);
        return this.scheduleReconnect(); // server still unreachable
      }
      if (this.closed || this.ws !== null) return;
      this.connect();
    }, delay);
  }

  onMessage(data) {
    let msg;
    try { msg = JSON.parse(data); } catch { return; }
    if (typeof msg.ack === 'number') {
      const batch = this.unacked.get(msg.ack);
      if (batch) {
        this.unacked.delete(msg.ack);
        this.unackedFrames -= batch.frames;
        this.counts.acked += batch.frames;
        this.counts.duplicates += msg.duplicates || 0;
      }
      this.onWire.delete(msg.ack);
      this.progress = true;
      this.probing = false;
      this.delayMs = this.opts.reconnectDelayMs; // the server takes our batches again
    } else if (msg.error !== undefined) {
      const seq = msg.seq;
      const status = msg.status || 0;
      if (status === 503 && this.unacked.has(seq)) {
        // The server is busy or restarting: keep the batch; it is resent after reconnecting.
        this.onWire.delete(seq);
        this.busy = true;
        this.ws && this.ws.close();
        return;
      }
      if (status === 404 || status === 409 || status === 401) {
        return this.fail(new ArenaError(status, `episode ${this.episodeId}, batch ${seq}: ${msg.error}`,
          { seq, episodeId: this.episodeId }));
      }
      this.progress = true; // the server answered: the connection works
      if (this.unacked.has(seq)) {
        this.giveUp(seq, status, `batch ${seq} refused: ${msg.error}`, 'refused');
      } else {
        this.opts.onError(new ArenaError(status, `episode ${this.episodeId}, batch ${seq}: ${msg.error}`,
          { seq, episodeId: this.episodeId }));
      }
      this.onWire.delete(seq);
    }
    this.pump();
    this.settleWaiters();
  }

  settleWaiters() {
    if (this.unacked.size > 0 || this.buffer.length > 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve();
  }

  drain(timeoutMs) {
    if (this.failed) return Promise.reject(this.failed);
    this.flushBuffer();
    if (this.unacked.size === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = { resolve: () => { clearTimeout(t); resolve(); }, reject: (e) => { clearTimeout(t); reject(e); } };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new ArenaError(0, `episode ${this.episodeId}: ${this.unackedFrames} frames still `
          + `unacknowledged after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** The episode cannot take frames any more (completed elsewhere, deleted, bad token). */
  fail(err) {
    if (this.failed) return;
    this.failed = err;
    this.closed = true;
    this.opts.onError(err);
    if (this.ws) this.ws.close();
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
  }

  close() {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    if (this.ws) this.ws.close(1000, 'episode complete');
    this.ws = null;
  }

  stats() {
    return { ...this.counts, pendingBatches: this.unacked.size, buffered: this.buffer.length,
      connected: this.open, failedBatches: this.failedBatches.length };
  }
}

let defaultClient = new ArenaClient();

/** Set the options of the module-level functions (baseUrl, token, batchSize, ...). */
export function configure(options) {
  defaultClient.close();
  defaultClient = new ArenaClient(options);
  return defaultClient;
}

export const registerFighter = (...args) => defaultClient.registerFighter(...args);
export const startEpisode = (...args) => defaultClient.startEpisode(...args);
export const recordFrame = (...args) => defaultClient.recordFrame(...args);
export const flush = (...args) => defaultClient.flush(...args);
export const completeEpisode = (...args) => defaultClient.completeEpisode(...args);
export const episodeStats = (...args) => defaultClient.stats(...args);
