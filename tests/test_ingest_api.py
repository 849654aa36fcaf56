"""The REST routes over real sockets: happy paths, errors, pagination, CORS, token, limits."""

import http.client
import json

import pytest

from ingest import BackgroundServer, Limits, ServerConfig
from storage import Database
from storage.records import OBSERVATION_SIZE

ORIGIN = "http://127.0.0.1:5173"


def frame(n: int, **changes) -> dict:
    f = {
        "frame_number": n,
        "fighter_position": [1.5, -2.0],
        "fighter_health": 88.5,
        "fighter_velocity": [0.25, 0.5],
        "enemies_state": [{"id": 4, "position": [3.0, 1.0], "health": 70.0}],
        "action_vector": [0.0] * 9 + [1.0],
        "reward_delta": 0.25,
        "cumulative_reward": n * 0.25,
        "observation_vector": [i / 8 for i in range(OBSERVATION_SIZE)],
    }
    f.update(changes)
    return f


class Api:
    """A keep-alive stdlib client (independent of the server's h11 code)."""

    def __init__(self, port: int, token: str | None = None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.token = token

    def __call__(self, method, path, body=None, headers=None, raw: bytes | None = None):
        hdrs = {"content-type": "application/json"}
        if self.token:
            hdrs["authorization"] = f"Bearer {self.token}"
        hdrs.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        self.conn.request(method, path, body=data, headers=hdrs)
        resp = self.conn.getresponse()
        payload = resp.read()
        ctype = resp.getheader("content-type", "")
        parsed = json.loads(payload) if payload and ctype.startswith("application/json") else payload
        if resp.getheader("connection") == "close":
            self.conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, parsed


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("api") / "arena.db"
    limits = Limits(max_body_bytes=256 * 1024, max_frames_per_batch=50, max_page_limit=20)
    with BackgroundServer(ServerConfig(db_path=str(db), port=0, cors_origins=[ORIGIN], limits=limits)) as s:
        yield s


@pytest.fixture
def api(server):
    client = Api(server.port)
    yield client
    client.conn.close()


@pytest.fixture
def episode(api):
    _, _, fighter = api("POST", "/api/fighters", {"glb_filename": "f.glb"})
    _, _, ep = api("POST", "/api/episodes", {"fighter_id": fighter["id"], "opponent_ids": [2, 3]})
    return ep


def test_health_docs_and_openapi_cover_every_route(server, api):
    status, _, health = api("GET", "/health")
    assert status == 200 and health["status"] == "ok" and health["schema_version"] >= 1
    status, _, doc = api("GET", "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    routes = {(r.method.lower(), r.pattern) for r in server.server.api.router.routes}
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert routes == documented | {("get", p) for p in doc["x-websocket"]}
    assert doc["info"]["x-limits"]["max_page_limit"] == 20
    status, headers, page = api("GET", "/docs")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"/api/episodes/{episode_id}/stream" in page and b"<script" not in page


def test_fighter_routes(api):
    status, _, fighter = api("POST", "/api/fighters", {"glb_filename": "hero.glb", "metadata": {"speed": 2}})
    assert status == 201 and fighter["metadata"] == {"speed": 2} and fighter["model_version"] == 0
    fid = fighter["id"]
    assert api("GET", f"/api/fighters/{fid}")[2] == fighter
    status, _, stats = api("GET", f"/api/fighters/{fid}/stats")
    assert status == 200 and stats["episodes"] == 0 and stats["win_rate"] is None
    assert api("GET", "/api/fighters/999999")[0] == 404
    assert api("GET", "/api/fighters/999999/stats")[0] == 404
    assert api("GET", "/api/fighters/abc")[0] == 404
    assert api("GET", f"/api/fighters/{fid}/best-model")[0] == 404
    status, _, err = api("POST", "/api/fighters", {"glb_filename": ""})
    assert status == 422 and "glb_filename" in err["error"]
    status, _, err = api("POST", "/api/fighters", {"glb_filename": "x.glb", "colour": "red"})
    assert status == 422 and "colour" in err["error"]


def test_checkpoints_and_best_model_written_by_the_trainer_api(server, api):
    with Database.open(server.config.db_path) as db:
        fid = db.register_fighter("trained.glb", {})
        db.add_checkpoint(fid, 1, 10, 0.4, 1.0, 100, "models/t_v1.pt", "aggression")
        best = db.add_checkpoint(fid, 2, 20, 0.9, 2.0, 200, "models/t_v2.pt", "aggression")
        db.add_checkpoint(fid, 3, 30, 0.7, 3.0, 300, "models/t_v3.pt", "aggression")
    status, _, page = api("GET", f"/api/fighters/{fid}/checkpoints?limit=2")
    assert status == 200 and page["total"] == 3 and [c["model_version"] for c in page["items"]] == [1, 2]
    status, _, model = api("GET", f"/api/fighters/{fid}/best-model")
    assert status == 200 and model["id"] == best and model["weights_path"] == "models/t_v2.pt"
    assert api("GET", "/api/fighters/999999/checkpoints")[0] == 404


def test_episode_lifecycle_and_frames(api, episode):
    eid = episode["id"]
    assert episode["status"] == "open" and episode["opponent_ids"] == [2, 3]
    status, _, out = api("POST", "/api/fight-frames", {"episode_id": eid, **frame(0)})
    assert status == 201 and out == {"episode_id": eid, "stored": 1, "duplicates": 0}
    status, _, out = api("POST", "/api/fight-frames", {"episode_id": eid, "frames": [frame(n) for n in range(5)]})
    assert status == 201 and out["stored"] == 4 and out["duplicates"] == 1
    status, _, out = api("POST", "/api/fight-frames", {"episode_id": eid, "frames": [frame(n) for n in range(5)]})
    assert out["stored"] == 0 and out["duplicates"] == 5  # a retried batch never duplicates
    status, _, page = api("GET", f"/api/episodes/{eid}/frames")
    assert status == 200 and page["total"] == 5 and [f["frame_number"] for f in page["items"]] == list(range(5))
    got = page["items"][3]
    assert got["observation_vector"] == frame(3)["observation_vector"]  # exact in float32
    assert got["enemies_state"] == frame(3)["enemies_state"] and got["action_vector"][9] == 1.0
    assert api("GET", f"/api/episodes/{eid}")[2]["frame_count"] == 5

    result = {"total_reward": 12.5, "duration_frames": 5, "is_victory": True, "rank": 1}
    status, _, done = api("PATCH", f"/api/episodes/{eid}", result)
    assert status == 200 and done["status"] == "completed" and done["is_victory"] is True
    assert api("PATCH", f"/api/episodes/{eid}", result)[0] == 200  # the same retry is a no-op
    status, _, err = api("PATCH", f"/api/episodes/{eid}", {**result, "total_reward": 1.0})
    assert status == 409 and "already completed" in err["error"]
    status, _, err = api("POST", "/api/fight-frames", {"episode_id": eid, **frame(9)})
    assert status == 409 and "completed" in err["error"]

    fid = episode["fighter_id"]
    stats = api("GET", f"/api/fighters/{fid}/stats")[2]
    assert stats["completed_episodes"] == 1 and stats["victories"] == 1 and stats["frames"] == 5
    assert api("GET", "/api/episodes/999999")[0] == 404
    assert api("PATCH", "/api/episodes/999999", result)[0] == 404
    assert api("GET", "/api/episodes/999999/frames")[0] == 404
    assert api("POST", "/api/fight-frames", {"episode_id": 999999, **frame(0)})[0] == 404
    assert api("POST", "/api/episodes", {"fighter_id": 999999})[0] == 404


def test_pagination(api):
    _, _, fighter = api("POST", "/api/fighters", {"glb_filename": "pages.glb"})
    fid = fighter["id"]
    ids = [api("POST", "/api/episodes", {"fighter_id": fid})[2]["id"] for _ in range(7)]
    status, _, page = api("GET", f"/api/fighters/{fid}/episodes?limit=3&offset=2")
    assert status == 200 and set(page) == {"items", "total", "limit", "offset"}
    assert page["total"] == 7 and page["limit"] == 3 and page["offset"] == 2
    assert [e["id"] for e in page["items"]] == ids[2:5]
    assert [e["episode_number"] for e in page["items"]] == [3, 4, 5]
    assert api("GET", f"/api/fighters/{fid}/episodes?offset=6")[2]["items"][0]["id"] == ids[6]
    assert api("GET", f"/api/fighters/{fid}/episodes?offset=70")[2]["items"] == []
    for bad in ("limit=0", "limit=21", "limit=x", "offset=-1", "sort=id"):
        status, _, err = api("GET", f"/api/fighters/{fid}/episodes?{bad}")
        assert status == 400 and err["status"] == 400, bad
    assert api("GET", "/api/fighters?limit=20")[2]["limit"] == 20


@pytest.mark.parametrize(
    "body, status, needle",
    [
        (b'{"episode_id": 1, "frames": [', 400, "malformed JSON"),
        (b'{"episode_id": 1, "frames": [{"frame_number": NaN}]}', 400, "NaN and Infinity"),
        (b'{"episode_id": 1, "frames": [{"frame_number": 1e999}]}', 422, "frame_number"),
        (b"", 400, "empty body"),
        (b"[1, 2]", 422, "Expected `object`"),
    ],
)
def test_malformed_bodies(api, body, status, needle):
    got, _, err = api("POST", "/api/fight-frames", raw=body)
    assert got == status and needle in err["error"] and err["status"] == status


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"observation_vector": [0.0] * 29}, "observation_vector"),
        ({"observation_vector": [0.0] * 31}, "observation_vector"),
        ({"fighter_position": [1.0]}, "fighter_position"),
        ({"fighter_health": "full"}, "fighter_health"),
        ({"frame_number": True}, "frame_number"),
        ({"frame_number": -1}, "frame_number"),
        ({"observation_vector": [1e39] + [0.0] * 29}, "observation_vector[0]"),
        ({"action_vector": []}, "action_vector"),
        ({"episode_id": 77}, "episode_id"),
        ({"extra_field": 1}, "extra_field"),
        ({"enemies_state": {"id": 1}}, "enemies_state: Expected a JSON array"),
        ({"enemies_state": [{"name": "x" * 5000}]}, "enemies_state: 5"),
    ],
)
def test_invalid_frames_name_the_field(api, episode, change, needle):
    status, _, err = api(
        "POST", "/api/fight-frames", {"episode_id": episode["id"], "frames": [frame(0), frame(1, **change)]}
    )
    assert status == 422 and needle in err["error"], err
    assert api("GET", f"/api/episodes/{episode['id']}")[2]["frame_count"] == 0  # nothing half-stored


def test_enemies_state_is_stored_as_sent_but_must_be_finite(api, episode):
    eid = episode["id"]
    good = json.dumps({"episode_id": eid, "frames": [frame(0)]}).replace(
        '"enemies_state": [', '"enemies_state": [{"tiny": 1e-300, "exp": 2.5E+2}, '
    )
    status, _, out = api("POST", "/api/fight-frames", raw=good.encode())
    assert status == 201 and out["stored"] == 1
    got = api("GET", f"/api/episodes/{eid}/frames")[2]["items"][0]["enemies_state"]
    assert got[0] == {"tiny": 1e-300, "exp": 250.0} and got[1] == frame(0)["enemies_state"][0]
    bad = good.replace("1e-300", "1e999").replace('"frame_number": 0', '"frame_number": 1')
    status, _, err = api("POST", "/api/fight-frames", raw=bad.encode())
    assert status == 422 and "frames[0].enemies_state" in err["error"] and "out of range" in err["error"]


def test_single_frame_missing_fields_and_mixed_body(api, episode):
    status, _, err = api("POST", "/api/fight-frames", {"episode_id": episode["id"], "frame_number": 3})
    assert status == 422 and "missing" in err["error"] and "observation_vector" in err["error"]
    status, _, err = api(
        "POST", "/api/fight-frames", {"episode_id": episode["id"], "frames": [frame(0)], "frame_number": 3}
    )
    assert status == 422 and "only episode_id and frames" in err["error"]


def test_size_limits(api, episode):
    status, _, err = api(
        "POST", "/api/fight-frames", {"episode_id": episode["id"], "frames": [frame(n) for n in range(51)]}
    )
    assert status == 413 and "51 frames" in err["error"]
    huge = b'{"episode_id": 1, "frames": [' + b" " * (300 * 1024) + b"]}"
    status, headers, err = api("POST", "/api/fight-frames", raw=huge)
    assert status == 413 and "limit" in err["error"] and headers["connection"] == "close"


def test_methods_types_and_unknown_routes(api):
    status, headers, err = api("DELETE", "/api/fighters")
    assert status == 405 and "GET" in headers["allow"] and "POST" in headers["allow"]
    status, _, err = api(
        "POST", "/api/fighters", raw=b"glb_filename=a", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert status == 415 and "application/json" in err["error"]
    assert api("GET", "/nope")[0] == 404
    status, headers, _ = api("GET", "/api/episodes/1/stream")  # a WebSocket endpoint
    assert status == 426 and headers["upgrade"] == "websocket"
    assert api("GET", "/health?x=1")[0] == 400


def test_cors_preflight_and_origins(api):
    status, headers, _ = api(
        "OPTIONS",
        "/api/fight-frames",
        headers={
            "origin": ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, authorization",
        },
    )
    assert status == 204
    assert headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in headers["access-control-allow-methods"]
    assert "authorization" in headers["access-control-allow-headers"]
    assert int(headers["access-control-max-age"]) > 0
    status, headers, _ = api("GET", "/api/fighters", headers={"origin": ORIGIN})
    assert status == 200 and headers["access-control-allow-origin"] == ORIGIN and headers["vary"] == "Origin"
    status, headers, err = api(
        "POST", "/api/fighters", {"glb_filename": "x.glb"}, headers={"origin": "http://evil.example"}
    )
    assert status == 403 and "access-control-allow-origin" not in headers and "--cors-origin" in err["error"]
    assert api("OPTIONS", "/api/fighters", headers={"origin": "http://evil.example"})[0] == 403
    assert api("OPTIONS", "/nope", headers={"origin": ORIGIN})[0] == 404
    status, headers, _ = api("GET", "/health", headers={"origin": "http://localhost:3000"})
    assert status == 403  # an explicit list replaces the loopback default


def test_token_required_for_writes_only(tmp_path):
    config = ServerConfig(db_path=str(tmp_path / "t.db"), port=0, token="s3cret")
    with BackgroundServer(config) as server:
        anon, good, bad = Api(server.port), Api(server.port, "s3cret"), Api(server.port, "wrong")
        status, headers, err = anon("POST", "/api/fighters", {"glb_filename": "a.glb"})
        assert status == 401 and headers["www-authenticate"] == "Bearer" and "Bearer" in err["error"]
        assert bad("POST", "/api/fighters", {"glb_filename": "a.glb"})[0] == 401
        status, _, fighter = good("POST", "/api/fighters", {"glb_filename": "a.glb"})
        assert status == 201
        assert anon("GET", f"/api/fighters/{fighter['id']}")[0] == 200  # reads stay open
        assert anon("PATCH", "/api/episodes/1", {"total_reward": 1, "duration_frames": 1, "is_victory": True})[0] == 401


def test_default_cors_allows_loopback_pages_only(tmp_path):
    with BackgroundServer(ServerConfig(db_path=str(tmp_path / "c.db"), port=0)) as server:
        api = Api(server.port)
        assert api("GET", "/health", headers={"origin": "http://localhost:8000"})[0] == 200
        assert api("GET", "/health", headers={"origin": "http://127.0.0.1:9"})[0] == 200
        assert api("GET", "/health", headers={"origin": "https://example.com"})[0] == 403
        own = f"http://127.0.0.1:{server.port}"
        assert api("GET", "/health", headers={"origin": own})[0] == 200
