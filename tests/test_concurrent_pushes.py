"""Many writers on one serving directory (issue 27, item 1).

Pushers that start in the same second claim distinct version numbers before
copying, and one model is pushed once, however many runs push it at once;
the claims and staging of a writer that was killed are cleaned by the next
push. On gs:// a claim is a conditional write (``ifGenerationMatch=0``): the
store here is a small fake of the Cloud Storage JSON API on 127.0.0.1 (the
calls google-cloud-storage makes for them), started by the test and reached
through STORAGE_EMULATOR_HOST.
"""

import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from contextlib import contextmanager

import pytest
from test_pusher import make_blessing, make_model, push

from components.pusher import component as pusher_executor
from components.shared import common, serving_claim, serving_layout

WRITERS = 4


def _together(count: int, work) -> list:
    """Runs ``work(index)`` in ``count`` threads released at the same moment; their results or errors."""
    start, results = threading.Barrier(count), [None] * count

    def run(index):
        start.wait()
        try:
            results[index] = work(index)
        except Exception as error:  # noqa: BLE001 - reported by the test
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


@pytest.fixture
def same_second(monkeypatch):
    """Every writer asks for the same epoch second: the worst case for version numbers."""
    monkeypatch.setattr(pusher_executor.time, "time", lambda: 1_800_000_000.0)


def _whole_versions(serving) -> dict[int, str]:
    versions = {}
    for version, folder in serving_layout.version_dirs(str(serving)).items():
        assert os.path.isfile(os.path.join(folder, "saved_model.pb")), folder
        versions[version] = serving_layout.read_manifest(folder)["model_uri"]
    return versions


def test_writers_in_the_same_second_claim_different_versions(tmp_path, same_second):
    serving = tmp_path / "serving"
    blessing = make_blessing(tmp_path, True)
    models = [make_model(tmp_path, f"m{i}") for i in range(WRITERS)]
    results = _together(WRITERS, lambda i: push(tmp_path, models[i], blessing, serving))
    assert not [r for r in results if isinstance(r, Exception)], results
    versions = _whole_versions(serving)
    assert sorted(versions) == list(range(1_800_000_000, 1_800_000_000 + WRITERS))
    assert sorted(versions.values()) == sorted(model.uri for model in models)
    assert sorted(os.listdir(serving)) == [".claims", *map(str, sorted(versions))]  # no staging
    assert os.listdir(serving / ".claims") == ["lock"]  # no claim left


def test_one_model_pushed_by_several_writers_at_once_is_pushed_once(tmp_path, same_second):
    serving = tmp_path / "serving"
    model, blessing = make_model(tmp_path), make_blessing(tmp_path, True)
    results = _together(WRITERS, lambda i: push(tmp_path, model, blessing, serving))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert list(_whole_versions(serving).values()) == [model.uri]
    again = [r.get_int_custom_property(pusher_executor.ALREADY_SERVING_KEY) for r in results]
    assert sorted(again) == [0] + [1] * (WRITERS - 1)
    assert {r.get_string_custom_property("pushed_version") for r in results} == {"1800000000"}


def _dead_pid() -> int:
    return int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout
    )


def test_a_killed_writers_claim_and_staging_are_cleaned_by_the_next_push(tmp_path, same_second):
    serving = tmp_path / "serving"
    dead = _dead_pid()
    claims = serving_claim.claims_of(str(serving))
    record = {**common.holder_record(), "pid": dead, "model_uri": "/elsewhere/model"}
    assert claims.create("1800000000.json", json.dumps(record))
    staging = serving / f"{pusher_executor.STAGING_PREFIX}1800000000-{dead}-abcdef12"
    (staging / "variables").mkdir(parents=True)

    pushed = push(tmp_path, make_model(tmp_path), make_blessing(tmp_path, True), serving)
    assert pushed.get_string_custom_property("pushed_version") == "1800000000"  # the dead claim's number is free again
    assert sorted(os.listdir(serving)) == [".claims", "1800000000"]
    assert os.listdir(serving / ".claims") == ["lock"]


def test_a_live_writers_claim_is_skipped_and_its_model_waited_for(tmp_path, same_second, monkeypatch):
    serving = tmp_path / "serving"
    model, blessing = make_model(tmp_path), make_blessing(tmp_path, True)
    # Another live writer holds 1800000000 for another model: this push takes the next number.
    claims = serving_claim.claims_of(str(serving))
    assert claims.create("1800000000.json", json.dumps({**common.holder_record(), "model_uri": "/other/model"}))
    assert push(tmp_path, model, blessing, serving).get_string_custom_property("pushed_version") == "1800000001"
    claims.delete("1800000000.json")

    # A live writer still copying the same model: the push waits, then finds it served.
    other = make_model(tmp_path, "n")
    assert claims.create("1800000005.json", json.dumps({**common.holder_record(), "model_uri": other.uri}))
    waited = []

    def the_other_writer_finishes(seconds):
        waited.append(seconds)
        pusher_executor.publish_version(
            os.path.join(other.uri, "Format-Serving"),
            str(serving),
            1800000005,
            {"version": 1800000005, "model_uri": other.uri},
        )
        claims.delete("1800000005.json")

    monkeypatch.setattr(pusher_executor.time, "sleep", the_other_writer_finishes)
    again = push(tmp_path, other, blessing, serving)
    assert waited and again.get_int_custom_property(pusher_executor.ALREADY_SERVING_KEY) == 1
    assert again.get_string_custom_property("pushed_version") == "1800000005"


def test_promotion_and_the_pusher_share_one_lock(tmp_path):
    from pipeline.serving import promotion

    prod = tmp_path / "prod"
    prod.mkdir()
    with serving_claim.locked(str(prod)):
        with pytest.raises(promotion.PromotionRefused, match="another promote or rollback .*pid"):
            promotion.rollback(prod)


# ------------------------------------------------------------------ gs://: conditional writes


class FakeGcs:
    """The Cloud Storage JSON API calls google-cloud-storage makes for claims:
    multipart upload (with ifGenerationMatch), media download, delete (with
    ifGenerationMatch), list by prefix. Objects live in a dict."""

    def __init__(self):
        self.objects = {}  # (bucket, name) -> (bytes, generation)
        self.generation = 0
        self.lock = threading.Lock()
        self.refused = 0  # 412s answered

    def handler(self):
        store = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status, body=b"", headers=None, content_type="application/json"):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def _resource(self, bucket, name, generation):
                return json.dumps(
                    {
                        "kind": "storage#object",
                        "bucket": bucket,
                        "name": name,
                        "generation": str(generation),
                        "size": str(len(store.objects[(bucket, name)][0])),
                    }
                ).encode()

            def _condition(self, query, key):
                current = store.objects.get(key, (None, 0))[1]
                wanted = query.get("ifGenerationMatch", [None])[0]
                return wanted is None or int(wanted) == current

            def do_POST(self):
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                bucket = url.path.split("/")[5]
                body = self.rfile.read(int(self.headers["Content-Length"]))
                boundary = self.headers["Content-Type"].split("boundary=")[1].strip('"').encode()
                parts = [part for part in body.split(b"--" + boundary) if part.strip(b"-\r\n")]
                metadata = json.loads(parts[0].split(b"\r\n\r\n", 1)[1])
                data = parts[1].split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]
                key = (bucket, metadata["name"])
                with store.lock:
                    if not self._condition(query, key):
                        store.refused += 1
                        return self._answer(412, b'{"error": {"code": 412, "message": "Precondition Failed"}}')
                    store.generation += 1
                    store.objects[key] = (data, store.generation)
                    return self._answer(200, self._resource(bucket, metadata["name"], store.generation))

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                parts = url.path.split("/")
                with store.lock:
                    if parts[1] == "download":  # /download/storage/v1/b/B/o/NAME?alt=media
                        key = (parts[5], urllib.parse.unquote(parts[7]))
                        if key not in store.objects:
                            return self._answer(404, b'{"error": {"code": 404, "message": "Not Found"}}')
                        data, generation = store.objects[key]
                        return self._answer(200, data, {"x-goog-generation": str(generation)}, "application/json")
                    if len(parts) == 6 and parts[5] == "o":  # /storage/v1/b/B/o?prefix=
                        prefix = query.get("prefix", [""])[0]
                        items = [
                            {"name": name, "bucket": bucket, "generation": str(generation)}
                            for (bucket, name), (_, generation) in sorted(store.objects.items())
                            if bucket == parts[4] and name.startswith(prefix)
                        ]
                        return self._answer(200, json.dumps({"kind": "storage#objects", "items": items}).encode())
                    return self._answer(404, b'{"error": {"code": 404, "message": "Not Found"}}')

            def do_DELETE(self):
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                parts = url.path.split("/")
                key = (parts[4], urllib.parse.unquote(parts[6]))
                with store.lock:
                    if key not in store.objects:
                        return self._answer(404, b'{"error": {"code": 404, "message": "Not Found"}}')
                    if not self._condition(query, key):
                        return self._answer(412, b'{"error": {"code": 412, "message": "Precondition Failed"}}')
                    del store.objects[key]
                    return self._answer(204)

        return Handler


@contextmanager
def fake_gcs(monkeypatch):
    store = FakeGcs()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), store.handler())
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{server.server_port}")
    try:
        yield store
    finally:
        server.shutdown()
        server.server_close()


SERVING = "gs://flowers-test/root/serving"


def test_gs_claims_are_conditional_writes_and_losers_take_the_next_number(monkeypatch):
    with fake_gcs(monkeypatch) as store:
        claimed = _together(WRITERS, lambda i: serving_claim.claim_version(SERVING, 1_800_000_000, f"/models/{i}"))
        assert sorted(claimed) == list(range(1_800_000_000, 1_800_000_000 + WRITERS)), claimed
        assert store.refused >= WRITERS - 1  # every loser was refused by the store, with HTTP 412
        claims = serving_claim.version_claims(SERVING)
        assert sorted(claim["model_uri"] for claim in claims.values()) == [f"/models/{i}" for i in range(WRITERS)]
        assert set(claims) == set(claimed)
        for version in claimed:
            serving_claim.release_version(SERVING, version)
        assert serving_claim.version_claims(SERVING) == {}
        assert all(name.startswith("root/serving/.claims/") for _, name in store.objects) and not store.objects


def test_gs_lock_is_exclusive_and_a_stale_one_is_taken_over(monkeypatch):
    with fake_gcs(monkeypatch) as store:
        lock_key = ("flowers-test", "root/serving/.claims/lock")
        with serving_claim.locked(SERVING):
            with pytest.raises(serving_claim.Busy, match=f"pid {os.getpid()}"):
                with serving_claim.locked(SERVING):
                    pass
        assert lock_key not in store.objects  # released

        claims = serving_claim.claims_of(SERVING)
        for stale in (
            {**common.holder_record(), "pid": _dead_pid()},  # this host, process gone
            {**common.holder_record(), "host": "elsewhere", "started": time.time() - 3600},
        ):
            assert claims.create("lock", json.dumps(stale))
            with serving_claim.locked(SERVING):
                assert json.loads(store.objects[lock_key][0])["pid"] == os.getpid()
        fresh = {**common.holder_record(), "host": "elsewhere", "pid": 1}  # another host, just now: held
        assert claims.create("lock", json.dumps(fresh))
        with pytest.raises(serving_claim.Busy, match="pid 1 on elsewhere"):
            with serving_claim.locked(SERVING, wait_seconds=0.3, poll_seconds=0.1):
                pass


def test_gs_claims_of_dead_writers_are_removed(monkeypatch):
    with fake_gcs(monkeypatch):
        claims = serving_claim.claims_of(SERVING)
        assert claims.create(
            "1800000000.json", json.dumps({**common.holder_record(), "pid": _dead_pid(), "model_uri": "a"})
        )
        assert claims.create("1800000001.json", json.dumps({**common.holder_record(), "model_uri": "b"}))
        assert serving_claim.remove_stale_claims(SERVING) == [1800000000]
        assert list(serving_claim.version_claims(SERVING)) == [1800000001]
