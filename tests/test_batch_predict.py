"""``flowers-tfx batch-predict``: many images through the serving signature, as a Beam job.

The model is tests/tiny_model.py's (the exported model's serving contract,
made in a second), so every test runs the real job on Beam's DirectRunner
in seconds. The check that matters: each line says what ``predict --json``
says for the same file.
"""

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny_model import export_tiny_model

from components.batch_inference import job
from pipeline.cli.main import main as flowers_tfx
from pipeline.config_loading import load_config
from pipeline.serving import batch_predict
from pipeline.serving.versions import find_saved_model


def jpeg(color: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG")
    return buffer.getvalue()


def read_lines(out_dir: Path) -> dict[str, dict]:
    """``{file: line}`` from every predictions shard of ``out_dir``."""
    lines = [json.loads(line) for shard in sorted(out_dir.glob("predictions-*.jsonl")) for line in shard.open()]
    return {line["file"]: line for line in lines}


@pytest.fixture(scope="module")
def serving(tmp_path_factory) -> Path:
    """A serving directory holding the tiny model as version 3."""
    folder = tmp_path_factory.mktemp("serving")
    export_tiny_model(folder / "3")
    return folder


@pytest.fixture
def photos(tmp_path) -> Path:
    """A folder of three small JPEGs of different colours."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, color in (("red", (200, 20, 20)), ("green", (20, 200, 20)), ("blue", (20, 20, 200))):
        (folder / f"{name}.jpg").write_bytes(jpeg(color))
    return folder


def test_the_sample_photos_get_the_classes_predict_gives_and_a_damaged_one_its_reason(
    shared_data_dir, serving, tmp_path, capfd
):
    photos = tmp_path / "photos"
    shutil.copytree(shared_data_dir / "flower_photos_sample", photos, ignore=shutil.ignore_patterns("*.txt"))
    files = sorted(photos.glob("*/*.jpg"))
    assert len(files) == 100
    damaged = photos / "roses" / "damaged.jpg"
    damaged.write_bytes(files[0].read_bytes()[:3000])

    status = flowers_tfx(
        ["batch-predict", "--model", str(serving), "--input", f"{photos}/*/*.jpg", "--out", str(tmp_path / "out")]
    )
    printed = capfd.readouterr()  # TensorFlow's own messages too (file descriptor 2)
    assert flowers_tfx(["predict", "--model", str(serving), "--json", *map(str, files)]) == 0
    expected = {answer["file"]: answer for answer in json.loads(capfd.readouterr().out)}

    lines = read_lines(tmp_path / "out")
    assert status == 1 and "1 of 101 image(s) refused" in printed.err
    assert "Local rendezvous" not in printed.err and "Traceback" not in printed.err
    assert len(lines) == 101
    assert {file: line["class"] for file, line in lines.items() if file != str(damaged)} == {
        file: answer["class_name"] for file, answer in expected.items()
    }
    some = lines[str(files[5])]
    assert [(s["class"], round(s["score"], 5)) for s in some["top_k"]] == [
        (p["class"], round(p["probability"], 5)) for p in expected[str(files[5])]["predictions"]
    ]
    assert some["score"] == some["top_k"][0]["score"] and some["model_version"] == "3"
    assert lines[str(damaged)]["reason"].startswith("not a decodable image (")
    assert "class" not in lines[str(damaged)]
    tally = json.loads((tmp_path / "out" / "tally.json").read_text())
    assert tally["images"] == 101 and tally["refused"] == 1 and sum(tally["per_class"].values()) == 100
    assert "Classified 100 of 101 image(s)" in printed.out


def test_tfrecord_shards_are_read_record_by_record(serving, tmp_path, capsys):
    from pipeline.data.synth import write_synthetic_shards

    write_synthetic_shards(str(tmp_path / "shards"), images=12, shards=2, seed=5, size=48)
    shards = sorted(tmp_path.glob("shards/*.tfrec"))

    status = flowers_tfx(
        [
            "batch-predict",
            "--model",
            str(serving),
            "--input",
            f"{tmp_path}/shards/*.tfrec",
            "--out",
            str(tmp_path / "out"),
            "--top-k",
            "1",
        ]
    )

    lines = read_lines(tmp_path / "out")
    assert status == 0, capsys.readouterr().err
    assert sorted(lines) == sorted(f"{shard}#{index}" for shard in shards for index in range(6))
    assert all(len(line["top_k"]) == 1 and line["class"] == line["top_k"][0]["class"] for line in lines.values())


def test_a_shard_cut_half_way_keeps_the_records_before_the_cut(serving, tmp_path, capsys):
    from pipeline.data.synth import write_synthetic_shards

    write_synthetic_shards(str(tmp_path / "shards"), images=8, shards=1, seed=5, size=48)
    [shard] = tmp_path.glob("shards/*.tfrec")
    import tensorflow as tf

    # A TFRecord is its length (8 bytes), a CRC (4), the data and a CRC (4): cut inside the fifth.
    four = sum(len(record.numpy()) + 16 for record in tf.data.TFRecordDataset(str(shard)).take(4))
    shard.write_bytes(shard.read_bytes()[: four + 20])

    status = flowers_tfx(
        ["batch-predict", "--model", str(serving), "--input", str(shard), "--out", str(tmp_path / "out")]
    )

    lines = read_lines(tmp_path / "out")
    assert status == 1, capsys.readouterr().err
    assert sorted(file for file, line in lines.items() if "class" in line) == [f"{shard}#{i}" for i in range(4)]
    assert lines[str(shard)]["reason"].startswith("cannot read it after 4 record(s) (")


def test_an_image_over_the_pixel_budget_is_refused_without_stopping_the_job(serving, photos, tmp_path, capsys):
    (photos / "large.png").write_bytes(b"")
    Image.new("RGB", (200, 200), (9, 9, 9)).save(photos / "large.png")

    status = flowers_tfx(
        [
            "batch-predict",
            "--model",
            str(serving),
            "--input",
            f"{photos}/*",
            "--out",
            str(tmp_path / "out"),
            "--max-image-pixels",
            "1300",
        ]
    )

    lines = read_lines(tmp_path / "out")
    assert status == 1, capsys.readouterr().err
    assert "over the budget of 1,300 pixels" in lines[str(photos / "large.png")]["reason"]
    assert sorted(Path(file).name for file, line in lines.items() if "class" in line) == [
        "blue.jpg",
        "green.jpg",
        "red.jpg",
    ]


def test_object_store_urls_take_the_remote_paths(serving, photos, tmp_path, capsys):
    """``file://`` URLs contain "://", so they take the code that gs:// takes."""
    assert find_saved_model(f"file://{serving}") == f"file://{serving}/3"
    out = f"file://{tmp_path}/out"

    status = flowers_tfx(
        ["batch-predict", "--model", f"file://{serving}", "--input", f"file://{photos}/*.jpg", "--out", out]
    )

    assert status == 0, capsys.readouterr().err
    assert sorted(read_lines(tmp_path / "out")) == sorted(
        f"file://{photos}/{name}.jpg" for name in ("blue", "green", "red")
    )


@pytest.mark.parametrize(
    "arguments, named",
    [
        (["--model", "{tmp}/nothing", "--input", "{photos}/*.jpg"], "{tmp}/nothing: no such directory"),
        (["--model", "{serving}", "--input", "{tmp}/none/*.jpg"], "{tmp}/none/*.jpg: no file matches the input"),
    ],
)
def test_a_bad_path_is_named_with_exit_status_2(serving, photos, tmp_path, capsys, arguments, named):
    values = {"tmp": tmp_path, "photos": photos, "serving": serving}
    status = flowers_tfx(["batch-predict", *[a.format(**values) for a in arguments], "--out", str(tmp_path / "out")])
    assert status == 2 and named.format(**values) in capsys.readouterr().err


def test_an_output_folder_already_used_is_refused(serving, photos, tmp_path, capsys):
    args = ["batch-predict", "--model", str(serving), "--input", f"{photos}/*.jpg", "--out", str(tmp_path / "out")]
    assert flowers_tfx(args) == 0
    assert flowers_tfx(args) == 2
    assert "already holds predictions" in capsys.readouterr().err


VERTEX = {
    "vertex.project": "my-project",
    "vertex.region": "europe-west4",
    "vertex.pipeline_root": "gs://bucket/root",
    "vertex.image": "europe-docker.pkg.dev/my-project/flowers/flowers-tfx:1",
}


def test_dataflow_gets_the_vertex_sections_project_region_temp_location_and_image():
    args = batch_predict.beam_args(load_config(overrides=VERTEX, environ={}), "DataflowRunner")

    for expected in (
        "--runner=DataflowRunner",
        "--project=my-project",
        "--region=europe-west4",
        "--temp_location=gs://bucket/root/tmp",
        f"--sdk_container_image={VERTEX['vertex.image']}",
        "--sdk_location=container",
    ):
        assert expected in args
    local = batch_predict.beam_args(load_config(environ={}), "DirectRunner", workers=2)
    assert local == ["--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def test_the_dataflow_branch_submits_the_same_job_with_those_options(monkeypatch, capsys):
    submitted = {}

    def record(model, glob, out, args, **settings):
        submitted.update(model=model, glob=glob, out=out, args=args)
        return job.Tally(images=2, per_class={"roses": 2}, model_dir=model, out_dir=out)

    monkeypatch.setattr(batch_predict, "batch_predict", record)
    settings = [arg for key, value in VERTEX.items() for arg in ("--set", f"{key}={value}")]
    paths = ["--model", "gs://b/serving", "--input", "gs://b/photos/*.jpg", "--out", "gs://b/out"]

    assert flowers_tfx(["batch-predict", *paths, "--runner", "DataflowRunner", *settings]) == 0
    assert submitted["args"][0] == "--runner=DataflowRunner" and "--project=my-project" in submitted["args"]
    assert (submitted["model"], submitted["glob"], submitted["out"]) == (
        "gs://b/serving",
        "gs://b/photos/*.jpg",
        "gs://b/out",
    )

    local_out = [*paths[:4], "--out", "predictions"]
    assert flowers_tfx(["batch-predict", *local_out, "--runner", "DataflowRunner", *settings]) == 2
    assert "predictions: --out must be on an object store" in capsys.readouterr().err
    assert flowers_tfx(["batch-predict", *paths, "--runner", "DataflowRunner"]) == 2
    assert "vertex.project is required" in capsys.readouterr().err


@pytest.mark.slow
def test_two_worker_processes_write_the_same_lines_as_one(serving, photos, tmp_path, capsys):
    """About 30 s on 2 cores: each worker process starts Python, TensorFlow and the model."""
    glob = f"{photos}/*.jpg"
    for workers in ("1", "2"):
        args = ["--input", glob, "--out", str(tmp_path / workers), "--workers", workers]
        assert flowers_tfx(["batch-predict", "--model", str(serving), *args]) == 0, capsys.readouterr().err
    (one, one_floats), (two, two_floats) = (floats_apart(read_lines(tmp_path / out)) for out in ("1", "2"))
    # The same lines, but for the last bits of the scores: with two workers
    # the photos meet the model in other batches, and a batch's size changes
    # the order of TensorFlow's float sums (seen: 0.0188064463 against 0.0188064538).
    assert one == two and one_floats
    np.testing.assert_allclose(one_floats, two_floats, rtol=1e-5, atol=1e-7)


def floats_apart(lines: dict[str, dict]) -> tuple[dict, list[float]]:
    """The lines with every float replaced by 0.0, and those floats in order."""
    floats = []
    skeleton = json.loads(json.dumps(lines, sort_keys=True), parse_float=lambda text: floats.append(float(text)) or 0.0)
    return skeleton, floats


# ---------------------------------------------------------------- the pipeline's BatchInference step


def run_step(version: str | None, input_glob: str, out: Path):
    """The BatchInference executor after a Pusher that pushed ``version`` (None: nothing
    pushed, as for a model not blessed); its output artifact."""
    from tfx.types import standard_artifacts

    from components.batch_inference import executor

    pushed_model, result = standard_artifacts.PushedModel(), standard_artifacts.InferenceResult()
    pushed_model.set_int_custom_property("pushed", int(version is not None))  # as TFX's Pusher marks it
    if version is not None:
        pushed_model.set_string_custom_property("pushed_destination", version)
    result.uri = str(out)
    properties = {"input_glob": input_glob, "top_k": 2, "batch_size": 4, "max_image_pixels": 10_000}
    executor.Executor().Do({"pushed_model": [pushed_model]}, {"inference_result": [result]}, properties)
    return result


def test_the_step_skips_a_model_that_was_not_pushed_and_says_why(photos, tmp_path):
    result = run_step(None, f"{photos}/*.jpg", tmp_path / "out")
    assert "not blessed" in result.get_string_custom_property("skipped")
    assert not result.get_string_custom_property("tally")
    assert not (tmp_path / "out").exists()  # nothing read, nothing written


def test_the_step_runs_the_same_job_on_the_pushed_version(serving, photos, tmp_path):
    (photos / "huge.jpg").write_bytes(jpeg((9, 9, 9), size=(200, 100)))  # over its pixel budget
    version = str(find_saved_model(serving))
    result = run_step(version, f"{photos}/*.jpg", tmp_path / "out")
    lines = read_lines(tmp_path / "out")
    assert set(lines) == {str(path) for path in photos.glob("*.jpg")}
    assert "pixels" in lines[str(photos / "huge.jpg")]["reason"]
    assert all(len(line["top_k"]) == 2 and line["model_version"] == "3" for line in lines.values() if "class" in line)
    tally = json.loads(result.get_string_custom_property("tally"))
    assert (tally["images"], tally["refused"], tally["model_version"]) == (4, 1, "3")
    assert sum(tally["per_class"].values()) == 3
