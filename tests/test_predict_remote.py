"""``flowers-tfx predict --endpoint`` and ``--server``: the images go to a
Vertex AI endpoint or TF Serving's REST API, and the answer says which
deployed model gave it. Both are tried against stand-in HTTP servers on
127.0.0.1 (a free port each), which check the requests as the real services
would read them and answer in their format."""

import base64
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.cli.main import main
from pipeline.serving import remote_predict

ENDPOINT = {
    "name": "projects/p/locations/r/endpoints/123",
    "displayName": "flowers",
    "deployedModels": [
        {"id": "111", "displayName": "flowers-v1", "modelVersionId": "1"},
        {"id": "222", "displayName": "flowers-v2", "modelVersionId": "2"},
    ],
    "trafficSplit": {"111": 50, "222": 50},
}
ROSES = {"probabilities": [0.05, 0.05, 0.7, 0.1, 0.1], "class_id": 2, "class_name": "roses"}


class StandIn(BaseHTTPRequestHandler):
    """Vertex AI's endpoints and prediction, and TF Serving's REST API, as far as predict uses them."""

    def log_message(self, *args):  # keep the test's output quiet
        pass

    def answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.server.seen.append(("GET", self.path, dict(self.headers), None))
        if self.path.startswith("/v1/projects/p/locations/r/endpoints?filter="):
            found = [ENDPOINT] if "flowers" in self.path else []
            return self.answer(200, {"endpoints": found})
        if self.path == "/v1/models/flowers":
            return self.answer(200, {"model_version_status": [{"version": "1733", "state": "AVAILABLE"}]})
        return self.answer(404, {"error": {"code": 404, "message": f"{self.path} not found"}})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append(("POST", self.path, dict(self.headers), body))
        (instance,) = body["instances"]
        image = base64.b64decode(instance["image_bytes"]["b64"])
        if image == b"too big":
            message = "image 0 of the batch is 16000x16000 pixels (256000000), over the budget of 40000000 pixels"
            return self.answer(400, {"error": {"code": 400, "message": message}})
        if self.path == "/v1/projects/p/locations/r/endpoints/123:predict":
            posts = sum(1 for seen in self.server.seen if seen[0] == "POST")
            deployed = "222" if posts % 2 == 0 else "111"  # every second request to the canary
            return self.answer(
                200, {"predictions": [ROSES], "deployedModelId": deployed, "modelVersionId": deployed[0]}
            )
        if self.path == "/v1/models/flowers:predict":
            return self.answer(200, {"predictions": [ROSES]})
        return self.answer(404, {"error": f"{self.path} not found"})


@pytest.fixture
def stand_in():
    """A stand-in server on a free port, stopped after the test; yields its URL and what it was sent."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    server.seen = []  # (method, path, headers, body) of every request
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def unused_port_url() -> str:
    """The URL of a port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture
def images(tmp_path):
    paths = []
    for name, data in [("a.jpg", b"\xff\xd8first"), ("b.jpg", b"\xff\xd8second"), ("c.jpg", b"\xff\xd8third")]:
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    return paths


VERTEX = ["--set", "vertex.project=p", "--set", "vertex.region=r", "--timeout", "5"]


def test_an_endpoint_answers_each_image_and_says_which_deployed_model_did(stand_in, images, monkeypatch, capsys):
    url, seen = stand_in
    monkeypatch.setenv(remote_predict.API_URL_VARIABLE, url)
    monkeypatch.setattr(remote_predict, "access_token", lambda: "test-token")
    assert main(["predict", "--endpoint", "flowers", *VERTEX, *images]) == 0
    out = capsys.readouterr().out
    assert "traffic 111: 50%, 222: 50%" in out
    assert "roses 0.700" in out and "<- 222 (flowers-v2 version 2)" in out
    assert "answered by: 111 (flowers-v1 version 1): 2, 222 (flowers-v2 version 2): 1" in out
    posts = [entry for entry in seen if entry[0] == "POST"]
    assert len(posts) == 3 and all(entry[2]["Authorization"] == "Bearer test-token" for entry in posts)
    assert base64.b64decode(posts[1][3]["instances"][0]["image_bytes"]["b64"]) == b"\xff\xd8second"

    assert main(["predict", "--endpoint", "flowers", *VERTEX, "--json", images[0]]) == 0
    (answer,) = json.loads(capsys.readouterr().out)
    assert answer["class_name"] == "roses" and answer["answered_by"] in ("111", "222")
    assert [entry["class"] for entry in answer["top"]] == ["roses", "sunflowers", "tulips"]


def test_an_image_the_endpoint_refuses_costs_only_itself(stand_in, images, tmp_path, monkeypatch, capsys):
    url, _ = stand_in
    monkeypatch.setenv(remote_predict.API_URL_VARIABLE, url)
    monkeypatch.setattr(remote_predict, "access_token", lambda: "test-token")
    (tmp_path / "bomb.png").write_bytes(b"too big")
    assert main(["predict", "--endpoint", "flowers", *VERTEX, images[0], str(tmp_path / "bomb.png")]) == 1
    captured = capsys.readouterr()
    assert "a.jpg" in captured.out
    assert "bomb.png: HTTP 400: image 0 of the batch is 16000x16000 pixels" in captured.err


def test_an_unknown_endpoint_or_a_server_that_is_down_is_said(stand_in, images, monkeypatch, capsys):
    url, _ = stand_in
    monkeypatch.setenv(remote_predict.API_URL_VARIABLE, url)
    monkeypatch.setattr(remote_predict, "access_token", lambda: "test-token")
    assert main(["predict", "--endpoint", "nothing", *VERTEX, images[0]]) == 2
    assert "no endpoint named 'nothing'" in capsys.readouterr().err
    assert main(["predict", "--endpoint", "flowers", images[0]]) == 2  # no vertex.project
    assert "vertex.project" in capsys.readouterr().err
    assert main(["predict", "--server", unused_port_url(), "--timeout", "2", images[0]]) == 1
    assert "no answer" in capsys.readouterr().err


def test_tf_serving_answers_with_its_available_version(stand_in, images, capsys):
    url, seen = stand_in
    assert main(["predict", "--server", url, "--model-name", "flowers", "--top-k", "1", *images[:2]]) == 0
    out = capsys.readouterr().out
    assert "roses 0.700  <- flowers version 1733" in out and "answered by: flowers version 1733: 2" in out
    assert [entry[1] for entry in seen if entry[0] == "POST"] == ["/v1/models/flowers:predict"] * 2
    assert "Authorization" not in seen[-1][2]
