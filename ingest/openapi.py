"""The OpenAPI 3.1 document served at /openapi.json, and the /docs page rendered from it
(self-contained HTML: no scripts or assets fetched from elsewhere)."""

from __future__ import annotations

import html
from functools import lru_cache

import orjson

from storage.records import MAX_ACTION_SIZE, MAX_ENEMIES_STATE_BYTES, OBSERVATION_SIZE

from .limits import DEFAULT_PAGE_LIMIT, MAX_OPPONENTS, Limits

VERSION = "1.0.0"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _vector(n_min: int, n_max: int, what: str) -> dict:
    return {"type": "array", "items": {"type": "number"}, "minItems": n_min, "maxItems": n_max, "description": what}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _responses(ok: int, schema: dict, description: str, errors: tuple[int, ...]) -> dict:
    out = {str(ok): {"description": description, **_json(schema)}}
    for status in errors:
        out[str(status)] = {"description": ERROR_MEANINGS[status], **_json(_ref("Error"))}
    return out


ERROR_MEANINGS = {
    400: "Malformed JSON or query parameters",
    401: "Bearer token missing or wrong (only when the server has one)",
    403: "Origin not allowed (CORS)",
    404: "Unknown fighter, episode, checkpoint or route",
    409: "Episode already completed",
    413: "Body over the byte limit, or too many frames in one batch",
    415: "Body is not JSON",
    422: "JSON of the wrong shape, type, length or range; the message names the field",
    500: "A registered checkpoint file is missing or unreadable (the message names it), or a server bug",
    503: "Database busy, too many connections, or shutting down; retry",
}

ACT_DESCRIPTION = """\
The fighter's best checkpoint (highest win rate, then average reward, then newest), or the
newest checkpoint with model_version `version`, chooses one action per observation: 0-7
accelerate north, north-east, ..., north-west; 8 idle; 9 attack. Greedy (the default) is
the argmax of the policy's logits; `greedy: false` draws from its distribution (pass
`seed` to make the draw reproducible). The server loads each checkpoint file once, with
numpy (no torch), and serves a newly registered best checkpoint from the next request on.
No token needed: it writes nothing."""


def _page_params() -> list[dict]:
    return [
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1},
            "description": f"items per page (default {DEFAULT_PAGE_LIMIT}, maximum in info.x-limits.max_page_limit)",
        },
        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
    ]


def _id_param(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}


def _page_of(name: str) -> dict:
    return {
        "type": "object",
        "required": ["items", "total", "limit", "offset"],
        "properties": {
            "items": {"type": "array", "items": _ref(name)},
            "total": {"type": "integer"},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
        },
    }


FRAME_SCHEMA = {
    "type": "object",
    "required": [
        "frame_number",
        "fighter_position",
        "fighter_health",
        "fighter_velocity",
        "enemies_state",
        "action_vector",
        "reward_delta",
        "cumulative_reward",
        "observation_vector",
    ],
    "additionalProperties": False,
    "properties": {
        "episode_id": {"type": "integer", "description": "optional in a batch; must match it"},
        "frame_number": {
            "type": "integer",
            "minimum": 0,
            "description": "60 Hz tick; unique per episode (a resent frame is ignored)",
        },
        "fighter_position": _vector(2, 2, "[x, y]"),
        "fighter_health": {"type": "number"},
        "fighter_velocity": _vector(2, 2, "[vx, vy]"),
        "enemies_state": {
            "type": "array",
            "description": "the game's per-enemy state, stored as sent; at most "
            f"{MAX_ENEMIES_STATE_BYTES} bytes of JSON",
        },
        "action_vector": _vector(1, MAX_ACTION_SIZE, "the action taken (e.g. one-hot of 10)"),
        "reward_delta": {"type": "number"},
        "cumulative_reward": {"type": "number"},
        "observation_vector": _vector(
            OBSERVATION_SIZE, OBSERVATION_SIZE, "own position (2), health (1), velocity (2), 5 nearest enemies x 5"
        ),
    },
    "description": "Vectors are stored as float32: values must fit float32 and read back rounded to it.",
}

STREAM_DESCRIPTION = """\
WebSocket (ws://HOST:PORT/api/episodes/{episode_id}/stream). Send JSON text messages
{"seq": n, "frames": [Frame, ...]}; you may send the next before the previous is answered
(up to max_inflight_batches). Answers come in the order sent: {"ack": n, "stored": k,
"duplicates": d} once the frames are committed, or {"error": "...", "seq": n, "status": code}.
Resending a batch after a reconnect is safe: frames already stored count as duplicates.
With a server token, add ?token=... to the URL or send {"token": "..."} first.
The handshake is refused with 404 (unknown episode), 409 (completed), 403 (origin) or 401.
permessage-deflate is not negotiated."""


@lru_cache(maxsize=4)
def _document_bytes(limits: Limits) -> bytes:
    return orjson.dumps(_build(limits))


def document(limits: Limits) -> orjson.Fragment:
    return orjson.Fragment(_document_bytes(limits))


def _build(limits: Limits) -> dict:
    write = {"security": [{}, {"bearer": []}]}
    fighter_id, episode_id = _id_param("fighter_id"), _id_param("episode_id")
    paths = {
        "/health": {
            "get": {
                "summary": "Liveness and database status",
                "responses": _responses(200, {"type": "object"}, "Server status", ()),
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": _responses(200, {"type": "object"}, "OpenAPI document", ()),
            }
        },
        "/docs": {
            "get": {"summary": "This document as a readable page", "responses": {"200": {"description": "HTML page"}}}
        },
        "/api/fighters": {
            "post": {
                "summary": "Register a fighter",
                **write,
                "requestBody": {"required": True, **_json(_ref("FighterIn"))},
                "responses": _responses(201, _ref("Fighter"), "The new fighter", (400, 401, 403, 413, 415, 422)),
            },
            "get": {
                "summary": "List fighters",
                "parameters": _page_params(),
                "responses": _responses(200, _page_of("Fighter"), "A page of fighters", (400,)),
            },
        },
        "/api/fighters/{fighter_id}": {
            "get": {
                "summary": "One fighter",
                "parameters": [fighter_id],
                "responses": _responses(200, _ref("Fighter"), "The fighter", (404,)),
            }
        },
        "/api/fighters/{fighter_id}/stats": {
            "get": {
                "summary": "Episode, frame and training summary of a fighter",
                "parameters": [fighter_id],
                "responses": _responses(200, _ref("FighterStats"), "Statistics", (404,)),
            }
        },
        "/api/fighters/{fighter_id}/episodes": {
            "get": {
                "summary": "A fighter's episodes, oldest first",
                "parameters": [fighter_id, *_page_params()],
                "responses": _responses(200, _page_of("Episode"), "A page of episodes", (400, 404)),
            }
        },
        "/api/fighters/{fighter_id}/checkpoints": {
            "get": {
                "summary": "A fighter's saved models, oldest first",
                "parameters": [fighter_id, *_page_params()],
                "responses": _responses(200, _page_of("Checkpoint"), "A page of checkpoints", (400, 404)),
            }
        },
        "/api/fighters/{fighter_id}/best-model": {
            "get": {
                "summary": "The checkpoint with the highest win rate (then average reward, then newest)",
                "parameters": [fighter_id],
                "responses": _responses(200, _ref("Checkpoint"), "The best checkpoint", (404,)),
            }
        },
        "/api/fighters/{fighter_id}/act": {
            "post": {
                "summary": "Actions for a batch of observations, from the fighter's best (or a named) checkpoint",
                "description": ACT_DESCRIPTION,
                "parameters": [fighter_id],
                "requestBody": {"required": True, **_json(_ref("ActIn"))},
                "responses": _responses(
                    200, _ref("Actions"), "One action per observation, in order", (400, 403, 404, 413, 415, 422, 500)
                ),
            }
        },
        "/api/episodes": {
            "post": {
                "summary": "Start an episode",
                **write,
                "requestBody": {"required": True, **_json(_ref("EpisodeIn"))},
                "responses": _responses(201, _ref("Episode"), "The new, open episode", (400, 401, 403, 404, 415, 422)),
            }
        },
        "/api/episodes/{episode_id}": {
            "get": {
                "summary": "One episode with its frame count",
                "parameters": [episode_id],
                "responses": _responses(200, _ref("Episode"), "The episode", (404,)),
            },
            "patch": {
                "summary": "Complete an episode with its result (repeating the same result is a no-op)",
                **write,
                "parameters": [episode_id],
                "requestBody": {"required": True, **_json(_ref("EpisodeResult"))},
                "responses": _responses(
                    200, _ref("Episode"), "The completed episode", (400, 401, 403, 404, 409, 415, 422)
                ),
            },
        },
        "/api/episodes/{episode_id}/frames": {
            "get": {
                "summary": "An episode's frames by frame number",
                "parameters": [episode_id, *_page_params()],
                "responses": _responses(200, _page_of("StoredFrame"), "A page of frames", (400, 404)),
            }
        },
        "/api/episodes/{episode_id}/stream": {
            "get": {
                "summary": "WebSocket frame stream (see description)",
                "description": STREAM_DESCRIPTION,
                "parameters": [episode_id, {"name": "token", "in": "query", "schema": {"type": "string"}}],
                "responses": {
                    "101": {"description": "Switching Protocols: the stream is open"},
                    **{
                        str(s): {"description": ERROR_MEANINGS[s], **_json(_ref("Error"))}
                        for s in (400, 401, 403, 404, 409)
                    },
                },
            }
        },
        "/api/fight-frames": {
            "post": {
                "summary": "Store one frame (with episode_id) or a batch {episode_id, frames}",
                **write,
                "requestBody": {"required": True, **_json({"oneOf": [_ref("FrameBatch"), _ref("SingleFrame")]})},
                "responses": _responses(
                    201, _ref("FramesStored"), "Committed", (400, 401, 403, 404, 409, 413, 415, 422)
                ),
            }
        },
    }
    nullable_number = {"type": ["number", "null"]}
    schemas = {
        "Error": {
            "type": "object",
            "required": ["error", "status"],
            "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
        },
        "FighterIn": {
            "type": "object",
            "required": ["glb_filename"],
            "additionalProperties": False,
            "properties": {
                "glb_filename": {"type": "string", "minLength": 1, "maxLength": 255},
                "metadata": {"type": "object", "default": {}},
                "model_version": {"type": "integer", "minimum": 0, "default": 0},
            },
        },
        "Fighter": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "glb_filename": {"type": "string"},
                "model_version": {"type": "integer"},
                "created_at": {"type": "string"},
                "metadata": {"type": "object"},
            },
        },
        "FighterStats": {
            "type": "object",
            "properties": {
                "fighter_id": {"type": "integer"},
                "episodes": {"type": "integer"},
                "completed_episodes": {"type": "integer"},
                "victories": {"type": "integer"},
                "win_rate": nullable_number,
                "avg_reward": nullable_number,
                "best_reward": nullable_number,
                "avg_duration_frames": nullable_number,
                "avg_rank": nullable_number,
                "frames": {"type": "integer"},
                "checkpoints": {"type": "integer"},
                "best_checkpoint": {"oneOf": [_ref("Checkpoint"), {"type": "null"}]},
                "latest_training_metrics": {"type": ["object", "null"]},
            },
        },
        "EpisodeIn": {
            "type": "object",
            "required": ["fighter_id"],
            "additionalProperties": False,
            "properties": {
                "fighter_id": {"type": "integer", "minimum": 1},
                "opponent_ids": {
                    "type": "array",
                    "items": {"type": "integer"},
                    "maxItems": MAX_OPPONENTS,
                    "default": [],
                },
                "episode_number": {"type": "integer", "minimum": 0, "description": "default: the fighter's next"},
            },
        },
        "EpisodeResult": {
            "type": "object",
            "required": ["total_reward", "duration_frames", "is_victory"],
            "additionalProperties": False,
            "properties": {
                "total_reward": {"type": "number"},
                "duration_frames": {"type": "integer", "minimum": 0},
                "is_victory": {"type": "boolean"},
                "rank": {"type": ["integer", "null"], "minimum": 1},
            },
        },
        "Episode": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "fighter_id": {"type": "integer"},
                "episode_number": {"type": "integer"},
                "opponent_ids": {"type": "array", "items": {"type": "integer"}},
                "total_reward": nullable_number,
                "duration_frames": {"type": ["integer", "null"]},
                "is_victory": {"type": ["boolean", "null"]},
                "rank": {"type": ["integer", "null"]},
                "started_at": {"type": "string"},
                "ended_at": {"type": ["string", "null"]},
                "status": {"enum": ["open", "completed"]},
                "frame_count": {"type": "integer", "description": "only on GET /api/episodes/{id}"},
            },
        },
        "Frame": FRAME_SCHEMA,
        "SingleFrame": {"allOf": [FRAME_SCHEMA, {"required": ["episode_id"]}]},
        "FrameBatch": {
            "type": "object",
            "required": ["episode_id", "frames"],
            "additionalProperties": False,
            "properties": {
                "episode_id": {"type": "integer", "minimum": 1},
                "frames": {
                    "type": "array",
                    "items": _ref("Frame"),
                    "minItems": 1,
                    "maxItems": limits.max_frames_per_batch,
                },
            },
        },
        "StoredFrame": {"allOf": [FRAME_SCHEMA, {"properties": {"id": {"type": "integer"}}}]},
        "FramesStored": {
            "type": "object",
            "properties": {
                "episode_id": {"type": "integer"},
                "stored": {"type": "integer", "description": "frames newly written"},
                "duplicates": {"type": "integer", "description": "frames already stored (a retry)"},
            },
        },
        "ActIn": {
            "type": "object",
            "required": ["observations"],
            "additionalProperties": False,
            "properties": {
                "observations": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": limits.max_act_observations,
                    "items": _vector(
                        OBSERVATION_SIZE,
                        OBSERVATION_SIZE,
                        "own position (2), health (1), velocity (2), 5 nearest enemies x 5; "
                        "finite numbers that fit float32",
                    ),
                },
                "greedy": {
                    "type": "boolean",
                    "default": True,
                    "description": "argmax of the logits; false: sample from the policy",
                },
                "version": {
                    "type": ["integer", "null"],
                    "minimum": 0,
                    "description": "a model_version of the fighter; default: its best checkpoint",
                },
                "seed": {
                    "type": ["integer", "null"],
                    "minimum": 0,
                    "description": "makes sampled actions reproducible (only used when greedy is false)",
                },
            },
        },
        "Actions": {
            "type": "object",
            "required": ["actions", "model_version", "checkpoint_id"],
            "properties": {
                "actions": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 9}},
                "model_version": {"type": "integer", "description": "of the checkpoint that chose them"},
                "checkpoint_id": {"type": "integer", "description": "its id in GET /api/fighters/{id}/checkpoints"},
            },
        },
        "Checkpoint": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "fighter_id": {"type": "integer"},
                "model_version": {"type": "integer"},
                "training_iteration": {"type": "integer"},
                "win_rate": {"type": "number"},
                "avg_reward": {"type": "number"},
                "total_episodes_trained": {"type": "integer"},
                "weights_path": {"type": "string"},
                "training_mode": {"type": "string"},
                "created_at": {"type": "string"},
            },
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Wrestling Arena ingest server",
            "version": VERSION,
            "description": "Stores the browser game's fighters, episodes and frames in SQLite. "
            "Lists answer {items, total, limit, offset}. Errors answer {error, status}.",
            "x-limits": {
                "max_body_bytes": limits.max_body_bytes,
                "max_frames_per_batch": limits.max_frames_per_batch,
                "max_act_observations": limits.max_act_observations,
                "max_page_limit": limits.max_page_limit,
                "default_page_limit": DEFAULT_PAGE_LIMIT,
                "max_connections": limits.max_connections,
                "max_inflight_batches": limits.max_inflight_batches,
                "request_timeout_s": limits.request_timeout_s,
                "keepalive_timeout_s": limits.keepalive_timeout_s,
                "ws_idle_timeout_s": limits.ws_idle_timeout_s,
            },
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "only when the server was started with --token",
                }
            },
        },
    }


@lru_cache(maxsize=4)
def docs_html(limits: Limits) -> str:
    doc = _build(limits)
    e = html.escape
    rows = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            params = ", ".join(p["name"] for p in op.get("parameters", []))
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            body_text = _schema_name(body) if body else ""
            statuses = ", ".join(f"{s}" for s in op["responses"])
            rows.append(
                f"<tr><td><b>{method.upper()}</b></td><td><code>{e(path)}</code></td>"
                f"<td>{e(op['summary'])}</td><td>{e(params)}</td><td>{e(body_text)}</td><td>{e(statuses)}</td></tr>"
            )
    schemas = "".join(
        f"<h3 id='{e(name)}'>{e(name)}</h3><pre>{e(orjson.dumps(s, option=orjson.OPT_INDENT_2).decode())}</pre>"
        for name, s in doc["components"]["schemas"].items()
    )
    limits_list = "".join(f"<li><code>{e(k)}</code>: {v}</li>" for k, v in doc["info"]["x-limits"].items())
    errors = "".join(f"<li><b>{s}</b> {e(m)}</li>" for s, m in ERROR_MEANINGS.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(doc["info"]["title"])}</title>
<style>body{{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top}}
pre{{background:#f6f6f6;padding:8px;overflow:auto}}code{{background:#f2f2f2}}</style></head>
<body><h1>{e(doc["info"]["title"])} <small>{e(doc["info"]["version"])}</small></h1>
<p>{e(doc["info"]["description"])} Machine-readable: <a href="/openapi.json">/openapi.json</a>.</p>
<h2>Endpoints</h2>
<table><tr><th>Method</th><th>Path</th><th>What</th><th>Parameters</th><th>Body</th><th>Statuses</th></tr>
{"".join(rows)}</table>
<h2>Frame stream (WebSocket)</h2><pre>{e(STREAM_DESCRIPTION)}</pre>
<h2>Errors</h2><ul>{errors}</ul>
<h2>Limits</h2><ul>{limits_list}</ul>
<h2>Schemas</h2>{schemas}
</body></html>"""


def _schema_name(schema: dict) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[1]
    if "oneOf" in schema:
        return " or ".join(_schema_name(s) for s in schema["oneOf"])
    return schema.get("type", "")
