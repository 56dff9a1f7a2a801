"""``flowers-tfx predict``: image files through the pushed model's serving signature.

The end-to-end tests use one small trained model (a few hundred synthetic
images, one epoch: the session's shared ``trained_run``, tests/conftest.py)
and check that ``predict`` answers exactly what TF Serving's REST
API would for the same files. The other tests need no trained model.
"""

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import schema
from components.shared.classifier import classify_batch, screen_image
from pipeline.cli.main import main as flowers_tfx
from pipeline.serving import predict
from pipeline.serving.versions import ServingDirError, find_saved_model


def jpeg(color: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG")
    return buffer.getvalue()


# ------------------------------------------------------------------ without a model


def test_a_version_folder_or_the_highest_version_of_a_serving_folder(tmp_path):
    for version in ("7", "12", "100"):
        (tmp_path / "serving" / version).mkdir(parents=True)
        (tmp_path / "serving" / version / "saved_model.pb").write_bytes(b"")
    (tmp_path / "serving" / ".staging-999").mkdir()

    assert find_saved_model(tmp_path / "serving") == tmp_path / "serving" / "100"
    assert find_saved_model(tmp_path / "serving" / "12") == tmp_path / "serving" / "12"


@pytest.mark.parametrize(
    "layout, message",
    [
        ([], "no such directory"),
        (["empty/"], "neither a SavedModel (no saved_model.pb) nor a serving directory"),
        (["empty/3/"], "version 3 has no saved_model.pb"),
        (["empty"], "not a directory"),
    ],
)
def test_a_path_without_a_model_is_a_clear_error(tmp_path, layout, message):
    for entry in layout:
        path = tmp_path / entry
        path.mkdir(parents=True) if entry.endswith("/") else path.write_text("")
    with pytest.raises(ServingDirError) as error:
        find_saved_model(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(error.value) and message in str(error.value)


class FussyClassifier:
    """Stands in for a model: rejects any batch that holds ``rejected`` bytes, as a
    graph would reject an image the decode check let through."""

    def __init__(self, rejected: bytes):
        self.model_dir = Path("fussy")
        self.labels = list(schema.LABELS)
        self.rejected = rejected
        self.batches = []

    def classify(self, images: list[bytes]) -> dict:
        self.batches.append(len(images))
        if self.rejected in images:
            raise tf.errors.InvalidArgumentError(None, None, "Invalid JPEG data or crop window")
        count = len(images)
        probabilities = np.tile(np.array([0.1, 0.5, 0.2, 0.15, 0.05], np.float32), (count, 1))
        return {
            "probabilities": probabilities,
            "class_id": np.ones(count, np.int64),
            "class_name": np.array([b"dandelion"] * count),
        }


def test_one_image_the_model_rejects_costs_only_itself(tmp_path):
    files = []
    for index, color in enumerate([(200, 10, 10), (10, 200, 10), (10, 10, 200), (90, 90, 90)]):
        files.append(tmp_path / f"photo{index}.jpg")
        files[-1].write_bytes(jpeg(color))
    classifier = FussyClassifier(rejected=files[2].read_bytes())

    report = predict.predict_files(Path("unused"), files, top_k=2, batch_size=4, classifier=classifier)

    assert [p.file for p in report.predictions] == [str(files[i]) for i in (0, 1, 3)]
    assert [(f.file, f.reason) for f in report.failures] == [
        (str(files[2]), "the model rejected it (Invalid JPEG data or crop window)")
    ]
    assert classifier.batches == [4, 1, 1, 1, 1]
    first = report.predictions[0]
    assert [(s.class_name, round(s.probability, 2)) for s in first.predictions] == [("dandelion", 0.5), ("roses", 0.2)]
    assert (first.class_id, first.class_name) == (1, "dandelion")


def test_a_rejected_batch_is_screened_and_sent_again_without_the_images_that_do_not_decode():
    """batch-predict's path: images screened from their headers only reach the model;
    when it rejects the batch, the full screening names the culprit."""
    good = [(f"photo{i}.jpg", jpeg((40 * i, 90, 90))) for i in range(3)]
    cut = ("cut.jpg", jpeg((1, 2, 3), (200, 200))[:400])
    classifier = FussyClassifier(rejected=cut[1])

    answers = classify_batch(classifier, [good[0], cut, *good[1:]], top_k=1, screen=screen_image)

    assert [type(a).__name__ for a in answers] == [
        "ImagePrediction",
        "ImageFailure",
        "ImagePrediction",
        "ImagePrediction",
    ]
    assert [a.file for a in answers] == ["photo0.jpg", "cut.jpg", "photo1.jpg", "photo2.jpg"]
    assert answers[1].reason.startswith("not a decodable image (")
    assert classifier.batches == [4, 3]  # the batch, then the three that decode, together


def test_unreadable_files_are_named_with_their_reason(tmp_path):
    good = tmp_path / "good.jpg"
    good.write_bytes(jpeg((200, 200, 0)))
    (tmp_path / "notes.jpg").write_text("not an image")
    (tmp_path / "cut.jpg").write_bytes(jpeg((1, 2, 3), (200, 200))[:400])
    (tmp_path / "empty.png").write_bytes(b"")
    files = [tmp_path / name for name in ("notes.jpg", "good.jpg", "missing.jpg", "cut.jpg", "empty.png")]

    report = predict.predict_files(Path("unused"), files, classifier=FussyClassifier(rejected=b"-"))

    assert [p.file for p in report.predictions] == [str(good)]
    reasons = {Path(f.file).name: f.reason for f in report.failures}
    assert reasons == {
        "notes.jpg": "not a decodable image (Unknown image file format. One of JPEG, PNG, GIF, BMP required.)",
        "missing.jpg": "No such file or directory",
        "cut.jpg": reasons["cut.jpg"],
        "empty.png": "empty file",
    }
    assert reasons["cut.jpg"].startswith("not a decodable image (")
    assert not report.ok


# ---------------------------------------------------------------- with a trained model


@pytest.fixture(scope="module")
def trained(trained_run) -> dict:
    """One small pipeline run (the shared one): its shards folder and pushed version folder."""
    assert trained_run.returncode == 0, trained_run.stdout + trained_run.stderr
    shards, work = trained_run.shards, trained_run.work_dir
    [version] = [p for p in (work / "serving").iterdir() if p.name.isdigit()]
    return {"shards": shards, "serving": work / "serving", "version": version}


@pytest.fixture(scope="module")
def photos(trained, tmp_path_factory) -> list[Path]:
    """Six JPEG files from the shards and one PNG, as a user would have them."""
    folder = tmp_path_factory.mktemp("photos")
    records = tf.data.TFRecordDataset(sorted(str(p) for p in trained["shards"].glob("*.tfrec"))).take(6)
    files = []
    for index, record in enumerate(records):
        image = tf.train.Example.FromString(record.numpy()).features.feature["image"].bytes_list.value[0]
        files.append(folder / f"flower{index}.jpg")
        files[-1].write_bytes(image)
    Image.open(files[0]).save(folder / "flower0.png")
    return files + [folder / "flower0.png"]


def rest_request_body(files: list[Path]) -> str:
    """The JSON a client posts to TF Serving's REST predict API for these files."""
    instances = [{"image_bytes": {"b64": base64.b64encode(f.read_bytes()).decode("ascii")}} for f in files]
    return json.dumps({"signature_name": "serving_default", "instances": instances})


def decode_like_tf_serving(body: str) -> dict[str, tf.Tensor]:
    """What TF Serving feeds the signature for a row-format request: one batch per
    input; a {"b64": ...} value becomes bytes when the input's name ends in _bytes."""
    instances = json.loads(body)["instances"]
    inputs: dict[str, list] = {}
    for instance in instances:
        for name, value in instance.items():
            if isinstance(value, dict):
                assert name.endswith("_bytes") and set(value) == {"b64"}, f"{name}: binary input needs a _bytes name"
                value = base64.b64decode(value["b64"])
            inputs.setdefault(name, []).append(value)
    return {name: tf.constant(values) for name, values in inputs.items()}


@pytest.mark.e2e
def test_predict_answers_what_tf_serving_would_for_a_rest_request(trained, photos):
    serve = tf.saved_model.load(str(trained["version"])).signatures["serving_default"]
    served = serve(**decode_like_tf_serving(rest_request_body(photos)))

    report = predict.predict_files(trained["serving"], photos, top_k=len(schema.LABELS), batch_size=3)

    assert report.ok and report.model_dir == trained["version"]
    assert [p.file for p in report.predictions] == [str(f) for f in photos]
    for row, prediction in enumerate(report.predictions):
        assert prediction.class_id == served["class_id"][row].numpy()
        assert prediction.class_name == served["class_name"][row].numpy().decode()
        probabilities = {s.class_name: s.probability for s in prediction.predictions}
        expected = dict(zip(schema.LABELS, served["probabilities"][row].numpy().tolist(), strict=True))
        assert probabilities == pytest.approx(expected, abs=1e-6)
    # The PNG is the first JPEG re-encoded losslessly. The JPEG is decoded at a
    # reduced scale by libjpeg and the PNG in full, then resized, so the pixels
    # differ slightly: nearly the same probabilities (the tiny model's classes
    # are close to a tie, so the top class itself may differ).
    png, jpeg = (
        {s.class_name: s.probability for s in p.predictions} for p in (report.predictions[-1], report.predictions[0])
    )
    assert png == pytest.approx(jpeg, abs=0.05)


@pytest.mark.e2e
def test_the_command_prints_a_table_or_json_and_says_what_failed(trained, photos, tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")

    version = str(trained["version"])
    status = flowers_tfx(["predict", "--model", version, str(photos[0]), str(photos[1]), "--top-k", "2"])
    table = capsys.readouterr().out
    assert status == 0
    assert table.splitlines()[0] == f"Model: {trained['version']}"
    assert table.splitlines()[1].startswith(str(photos[0]))
    assert len(table.splitlines()) == 3

    status = flowers_tfx(["predict", "--model", str(trained["serving"]), str(photos[2]), str(broken), "--json"])
    captured = capsys.readouterr()
    assert status == 1
    [answer] = json.loads(captured.out)
    assert answer["file"] == str(photos[2]) and len(answer["predictions"]) == 3
    assert set(answer) == {"file", "predictions", "class_id", "class_name"}
    assert answer["class_name"] == schema.LABELS[answer["class_id"]] == answer["predictions"][0]["class"]
    assert f"error: {broken}: not a decodable image" in captured.err
    assert "Traceback" not in captured.err

    assert flowers_tfx(["predict", "--model", str(tmp_path), str(photos[0])]) == 2
    assert "nor a serving directory of numbered versions" in capsys.readouterr().err


@pytest.mark.e2e
def test_batch_predict_answers_as_predict_does_with_the_pipelines_own_model(trained, photos, tmp_path, capsys):
    assert flowers_tfx(["predict", "--model", str(trained["serving"]), *map(str, photos), "--json"]) == 0
    expected = {answer["file"]: answer["class_name"] for answer in json.loads(capsys.readouterr().out)}

    glob = f"{photos[0].parent}/flower*"
    assert (
        flowers_tfx(["batch-predict", "--model", str(trained["serving"]), "--input", glob, "--out", str(tmp_path)]) == 0
    )

    lines = [json.loads(line) for shard in tmp_path.glob("predictions-*.jsonl") for line in shard.open()]
    assert {line["file"]: line["class"] for line in lines} == expected
    assert {line["model_version"] for line in lines} == {trained["version"].name}
