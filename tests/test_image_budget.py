"""The pixel budget (``data.max_image_pixels``): an image's size is read from
its header and checked before anything decodes it, everywhere.

A "bomb" here is a PNG of 1-bit pixels, all zero: a few kilobytes for a
16000 x 16000 image that would take gigabytes to decode. Each path must refuse
it with a message that names the file (or record) and its size in pixels:
the header readers, the record screening, ``data inspect``, ``data convert``,
``predict``, the transform graph and the exported model's serving signature,
the last in a process of its own whose peak memory is measured.
"""

import io
import json
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
import tf_keras as keras
from PIL import Image
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

import schema
from components.example_gen import component as example_gen_component
from components.example_gen import screening
from components.records import features, image_budget
from components.records.image_budget import ImageHeaderError, graph_dimensions, read_dimensions
from components.shared import tf_environment
from components.trainer import signatures
from components.transform import preprocessing
from pipeline.cli.main import main as flowers_tfx
from pipeline.data.shards import make_example, shard_filename, write_shard
from pipeline.data.square_photos import ImageDecodeError, square_jpeg

BUDGET = image_budget.DEFAULT_MAX_IMAGE_PIXELS
PROJECT = Path(__file__).resolve().parents[1]


def png_bomb(width: int, height: int) -> bytes:
    """A valid PNG of width x height 1-bit gray pixels, all zero (about 31 KB at 16000 x 16000)."""
    row = b"\0" * (1 + (width + 7) // 8)  # the filter byte, then the packed pixels
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


BOMB_16K = png_bomb(16000, 16000)
BOMB_23K = png_bomb(23000, 23000)


def encode(picture: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8))


PHOTO = encode(noise(70, 50), "JPEG")


def message(width: int, height: int, budget: int = BUDGET) -> str:
    return f"image is {width}x{height} pixels ({width * height:,}), over the budget of {budget:,} pixels"


def record(image: bytes, class_id: int = 1) -> bytes:
    return make_example(image, class_id, 50, 70).SerializeToString()


# ------------------------------------------------------------------ reading the header


def _top_down_bmp() -> bytes:
    """A BMP whose rows are stored top-down: a negative height in its header."""
    data = bytearray(encode(noise(13, 7), "BMP"))
    struct.pack_into("<i", data, 22, -7)
    return bytes(data)


HEADER_CASES = {
    "jpeg": (encode(noise(37, 21), "JPEG"), (37, 21)),
    "progressive-jpeg": (encode(noise(300, 5), "JPEG", progressive=True), (300, 5)),
    "grayscale-jpeg": (encode(noise(20, 90).convert("L"), "JPEG"), (20, 90)),
    "cmyk-jpeg": (encode(noise(33, 44).convert("CMYK"), "JPEG"), (33, 44)),
    "png": (encode(noise(37, 21), "PNG"), (37, 21)),
    "rgba-png": (encode(noise(8, 300).convert("RGBA"), "PNG"), (8, 300)),
    "palette-png": (encode(noise(64, 3).convert("P"), "PNG"), (64, 3)),
    "gif": (encode(noise(41, 17).convert("P"), "GIF"), (41, 17)),
    "bmp": (encode(noise(19, 23), "BMP"), (19, 23)),
    "top-down-bmp": (_top_down_bmp(), (13, 7)),
    "png-bomb": (BOMB_16K, (16000, 16000)),
}


@pytest.mark.parametrize("data, size", HEADER_CASES.values(), ids=HEADER_CASES.keys())
def test_the_header_gives_the_size_pillow_and_tensorflow_see(data, size):
    dimensions = read_dimensions(data)
    assert (dimensions.width, dimensions.height) == size
    if data is not BOMB_16K:
        with Image.open(io.BytesIO(data)) as picture:
            assert picture.size == size
        assert tf.io.decode_image(data, expand_animations=False).shape[:2] == (size[1], size[0])
    # The graph version: (height, width), for a batch.
    assert graph_dimensions(tf.constant([data, data])).numpy().tolist() == [[size[1], size[0]]] * 2


def test_the_header_of_every_real_photo_gives_its_size(shared_data_dir):
    photos = sorted(path for path in (shared_data_dir / "flower_photos_sample").rglob("*.jpg"))
    assert photos
    encoded = [path.read_bytes() for path in photos]
    expected = []
    for data in encoded:
        with Image.open(io.BytesIO(data)) as picture:
            expected.append(picture.size)
        assert read_dimensions(data)[1:] == expected[-1]
    assert [tuple(hw[::-1]) for hw in graph_dimensions(tf.constant(encoded)).numpy().tolist()] == expected


def test_a_jpeg_frame_header_is_read_past_other_segments():
    """A JPEG that declares 20000 x 30000 in its start-of-frame segment, after
    EXIF and comment segments: both readers find the size libjpeg would use."""
    picture = noise(40, 30)
    data = bytearray(encode(picture, "JPEG", exif=picture.getexif().tobytes(), comment=b"x" * 500))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 30000, 20000)
    assert read_dimensions(bytes(data))[1:] == (20000, 30000)
    assert graph_dimensions(tf.constant([bytes(data)])).numpy().tolist() == [[30000, 20000]]


@pytest.mark.parametrize(
    "data",
    [b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", b"\x89PNG\r\n\x1a\n\x00\x00", b"GIF89a\x01", b"BM\x00\x00"],
    ids=["jpeg-without-frame", "png-without-ihdr", "short-gif", "short-bmp"],
)
def test_a_damaged_header_is_refused_not_decoded(data):
    with pytest.raises(ImageHeaderError, match="header is damaged"):
        read_dimensions(data)
    assert image_budget.header_problem(data, BUDGET).startswith("image does not decode: ")


def test_other_formats_are_left_to_the_decoder():
    assert read_dimensions(b"this is not an image") is None
    assert image_budget.header_problem(b"this is not an image", BUDGET) is None
    assert graph_dimensions(tf.constant([b"garbage", b""])).numpy().tolist() == [[0, 0], [0, 0]]


# ------------------------------------------------------------------ the record screening


def test_opening_within_a_budget_leaves_pillows_own_limit_alone():
    """The budget is Pillow's limit for that one open: a chart drawn later in
    the same process (the model card's) is not refused by a small budget."""
    from PIL import Image

    before = Image.MAX_IMAGE_PIXELS
    image_budget.open_image(PHOTO, max_pixels=3500).close()
    with pytest.raises(image_budget.ImageBudgetError):
        image_budget.open_image(PHOTO, max_pixels=100)
    assert Image.MAX_IMAGE_PIXELS == before


def test_the_screening_refuses_a_bomb_without_decoding_it():
    started = time.perf_counter()
    problems = screening.record_problems(record(BOMB_23K))
    assert time.perf_counter() - started < 1  # decoding it would take seconds and about 6 GB
    assert problems == [message(23000, 23000) + " (data.max_image_pixels); it is not decoded"]


def test_the_screening_uses_the_configured_budget():
    assert screening.record_problems(record(PHOTO), max_pixels=3500) == []
    assert screening.record_problems(record(PHOTO), max_pixels=3499) == [
        message(70, 50, 3499) + " (data.max_image_pixels); it is not decoded"
    ]


def test_a_record_over_the_budget_is_set_aside_like_any_bad_record(tmp_path):
    shard = tmp_path / shard_filename(0, 3)
    write_shard(str(shard), [record(PHOTO), record(BOMB_16K), record(PHOTO)])
    outputs = list(screening.ScreenShard(BUDGET).process((str(shard), 0)))
    tagged = [output for output in outputs if isinstance(output, beam.pvalue.TaggedOutput)]
    bad = [output.value for output in tagged if output.tag == "bad"]
    tally = [output.value for output in tagged if output.tag == "tally"]
    assert len(outputs) == 4 and len(bad) == 1
    assert tally == [{"shard": str(shard), "span": 0, "classes": [0, 2, 0, 0, 0]}]  # the good records, per class
    assert bad[0]["shard"] == str(shard) and bad[0]["index"] == 1
    quarantined = tf.train.Example.FromString(bad[0]["record"])  # the raw record, to be written aside
    assert quarantined.features.feature["image"].bytes_list.value == [BOMB_16K]
    assert message(16000, 16000) in bad[0]["reasons"][0]
    listed = screening.describe([bad[0]], "q")
    assert listed.startswith(f"{shard} record 1: {message(16000, 16000)}")


def test_the_budget_reaches_the_screening_and_transform_from_the_configuration(tmp_path):
    from pipeline import dag
    from pipeline.config_loading import load_config

    config = load_config(overrides={"data.max_image_pixels": 1234, "run.work_dir": str(tmp_path)}, environ={})
    pipeline = dag.create_pipeline(
        config, dag.DataLocation(base=str(tmp_path), pattern="*.tfrec"), str(tmp_path / "root"), str(tmp_path / "s")
    )
    nodes = {node.id: node for node in pipeline.components}
    example_gen = nodes["ImportExampleGen"].exec_properties
    assert example_gen_component._settings(example_gen)["max_image_pixels"] == 1234
    assert json.loads(nodes["Transform"].exec_properties["custom_config"])["max_image_pixels"] == 1234


@pytest.mark.parametrize("value", [0, -5, "many"])
def test_a_budget_that_cannot_work_is_refused_naming_the_key(value):
    from pipeline.config import ConfigError
    from pipeline.config_loading import load_config

    with pytest.raises(ConfigError, match="data.max_image_pixels"):
        load_config(overrides={"data.max_image_pixels": value}, environ={})


@pytest.mark.e2e
def test_a_bomb_in_a_shard_stops_the_run_naming_it(small_run, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    good = [make_example(PHOTO, i % 5, 50, 70).SerializeToString() for i in range(20)]
    shard = data / shard_filename(0, 21)
    write_shard(str(shard), good[:7] + [record(BOMB_23K)] + good[7:])
    result, out = small_run.run(f"{data}/*.tfrec", tmp_path / "work")
    assert not result.succeeded
    assert "1 of 21 records (4.8%) cannot be used; none are allowed" in out
    assert f"{shard} record 7: {message(23000, 23000)} (data.max_image_pixels)" in out
    assert "Traceback" not in out


# ------------------------------------------------------------------ data inspect and data convert


@pytest.fixture
def shard_with_bomb(tmp_path):
    shard = tmp_path / shard_filename(0, 3)
    write_shard(str(shard), [record(PHOTO), record(BOMB_23K), record(PHOTO)])
    return shard


def test_inspect_names_the_record_and_its_size(shard_with_bomb, capsys):
    started = time.perf_counter()
    assert flowers_tfx(["data", "inspect", str(shard_with_bomb)]) == 1
    assert time.perf_counter() - started < 10
    out, err = capsys.readouterr()
    assert f"{shard_with_bomb.name} record 1: {message(23000, 23000)} (data.max_image_pixels)" in out
    assert "bomb" not in out.lower()  # our message, not Pillow's DecompressionBombError
    assert "Traceback" not in out + err


def test_inspect_takes_the_budget_as_an_option(tmp_path, capsys):
    shard = tmp_path / shard_filename(0, 1)
    write_shard(str(shard), [record(PHOTO)])
    assert flowers_tfx(["data", "inspect", str(shard)]) == 0
    capsys.readouterr()
    assert flowers_tfx(["data", "inspect", str(shard), "--max-image-pixels", "1000", "--json"]) == 1
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert problems == [
        {
            "path": str(shard),
            "index": 0,
            "problem": message(70, 50, 1000) + " (data.max_image_pixels); it is not decoded",
        }
    ]


@pytest.fixture
def photo_tree(tmp_path):
    root = tmp_path / "photos"
    for name in ("daisy", "roses", "tulips"):
        (root / name).mkdir(parents=True)
    (root / "daisy" / "small.jpg").write_bytes(encode(noise(300, 200), "JPEG"))
    (root / "roses" / "bomb.png").write_bytes(BOMB_16K)
    (root / "tulips" / "big.jpg").write_bytes(encode(Image.new("RGB", (3000, 2000), (200, 30, 30)), "JPEG"))
    return root


def test_convert_skips_a_bomb_naming_the_file_and_its_size(photo_tree, tmp_path, capsys):
    out_dir = tmp_path / "shards"
    assert flowers_tfx(["data", "convert", "--from", str(photo_tree), "--out", str(out_dir), "--size", "32"]) == 1
    out, err = capsys.readouterr()
    assert f"skipped {photo_tree / 'roses' / 'bomb.png'}: {message(16000, 16000)}" in err
    assert "wrote 2 records" in out and "Traceback" not in out + err
    assert f"{photo_tree / 'roses' / 'bomb.png'}\t{message(16000, 16000)}" in (out_dir / "skipped.txt").read_text()


def test_convert_takes_the_budget_as_an_option(photo_tree, tmp_path, capsys):
    args = ["data", "convert", "--from", str(photo_tree), "--out", str(tmp_path / "shards"), "--size", "32"]
    assert flowers_tfx([*args, "--max-image-pixels", "5000000"]) == 1
    out, err = capsys.readouterr()
    assert f"skipped {photo_tree / 'tulips' / 'big.jpg'}: {message(3000, 2000, 5_000_000)}" in err
    assert "wrote 1 records" in out


@pytest.mark.parametrize("size", [(40, 40), (100, 100)], ids=["over-the-budget", "over-twice-the-budget"])
def test_formats_only_pillow_reads_are_held_to_the_same_budget(size):
    """TIFF: measured from the header Pillow opens, whose own bomb limit is set
    to the budget (Pillow refuses at open above twice its limit)."""
    tiff = encode(noise(*size), "TIFF")
    assert read_dimensions(tiff) is None
    with pytest.raises(ImageDecodeError, match=r"over the budget of 1,000 pixels \(data.max_image_pixels\)"):
        square_jpeg(tiff, 16, max_pixels=1000)
    assert len(square_jpeg(tiff, 16, max_pixels=10_000)) > 0


# ------------------------------------------------------------------ the transform graph and the exported model


def test_the_transform_graph_refuses_a_batch_holding_an_image_over_the_budget():
    batch = tf.constant([PHOTO, PHOTO, encode(noise(90, 60), "PNG"), PHOTO])
    decode = tf.function(lambda images: preprocessing.decode_images(images, 16, max_pixels=5000))
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        decode(batch)
    assert (
        "image 2 of the batch is 90x60 pixels (5400), over the budget of 5000 pixels (data.max_image_pixels)"
        in error.value.message
    )
    assert decode(batch[:2]).shape == (2, 16, 16, 3)
    assert decode(tf.constant([], tf.string)).shape == (0, 16, 16, 3)


@pytest.fixture(scope="module")
def exported_model(tmp_path_factory) -> Path:
    """A model exported by ``signatures.export_serving_model`` with a transform
    graph made by tft_beam from ``preprocessing_fn`` (budget: the default), as
    Transform and the Trainer make them; the model itself is one dense layer."""
    root = tmp_path_factory.mktemp("budget-model")
    spec = {features.IMAGE: tf.io.FixedLenFeature([1], tf.string), features.LABEL: tf.io.FixedLenFeature([1], tf.int64)}
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    instances = [
        {features.IMAGE: [encode(noise(48, 40, seed), "JPEG")], features.LABEL: [seed % 5]} for seed in range(10)
    ]
    custom_config = {"image_size": 16, "max_image_pixels": BUDGET}
    with tft_beam.Context(temp_dir=str(root / "tmp"), force_tf_compat_v1=False):
        transform_fn = (instances, metadata) | tft_beam.AnalyzeDataset(
            lambda inputs: preprocessing.preprocessing_fn(inputs, custom_config)
        )
        _ = transform_fn | tft_beam.WriteTransformFn(str(root / "transform"))
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(), keras.layers.Dense(5, "softmax")])
    export_dir = root / "serving" / "1"
    signatures.export_serving_model(
        model, tft.TFTransformOutput(str(root / "transform")), schema.LABELS, str(export_dir)
    )
    return export_dir


SERVE_A_BOMB = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf

    model = tf.saved_model.load(sys.argv[1])
    serve = model.signatures["serving_default"]
    answers = {}
    for name, path in [("photo", sys.argv[2]), ("bomb", sys.argv[3])]:
        data = open(path, "rb").read()
        try:
            answers[name] = serve(image_bytes=tf.constant([data]))["class_name"].numpy()[0].decode()
        except tf.errors.InvalidArgumentError as error:
            answers[name] = "InvalidArgumentError: " + error.message
    # This process's own peak (VmHWM): ru_maxrss would also count the pytest
    # process it was forked from, whose peak Linux carries over the exec.
    status = open("/proc/self/status").read()
    answers["peak_rss_mb"] = int(status.split("VmHWM:")[1].split()[0]) / 1024
    print(json.dumps(answers))
    """
)


@pytest.mark.slow
def test_the_serving_signature_refuses_a_bomb_within_bounded_memory(exported_model, tmp_path):
    """The bytes a REST client would send, through ``serving_default`` in a
    process of its own: an error naming the size, and a peak RSS far below
    what decoding would take (the 16000 x 16000 bomb: about 4.4 GB)."""
    (tmp_path / "photo.jpg").write_bytes(PHOTO)
    (tmp_path / "bomb.png").write_bytes(BOMB_16K)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            SERVE_A_BOMB,
            str(exported_model),
            str(tmp_path / "photo.jpg"),
            str(tmp_path / "bomb.png"),
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env={"TF_CPP_MIN_LOG_LEVEL": tf_environment.VARIABLES["TF_CPP_MIN_LOG_LEVEL"], "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    assert answers["photo"] in schema.LABELS
    assert answers["bomb"].startswith("InvalidArgumentError: ")
    assert (
        "image 0 of the batch is 16000x16000 pixels (256000000), over the budget of 40000000 pixels "
        "(data.max_image_pixels); it is not decoded" in answers["bomb"]
    )
    assert answers["peak_rss_mb"] < 1536, answers


def test_predict_names_a_file_over_the_budget_and_classifies_the_rest(exported_model, tmp_path, capsys):
    (tmp_path / "photo.jpg").write_bytes(PHOTO)
    (tmp_path / "bomb.png").write_bytes(BOMB_16K)
    files = [str(tmp_path / "bomb.png"), str(tmp_path / "photo.jpg")]
    assert flowers_tfx(["predict", "--model", str(exported_model), *files, "--json"]) == 1
    out, err = capsys.readouterr()
    assert [p["file"] for p in json.loads(out)] == [files[1]]
    assert f"error: {files[0]}: {message(16000, 16000)} (data.max_image_pixels); it is not decoded" in err
    assert "Traceback" not in out + err

    assert flowers_tfx(["predict", "--model", str(exported_model), files[1], "--max-image-pixels", "3000"]) == 1
    assert f"error: {files[1]}: {message(70, 50, 3000)}" in capsys.readouterr().err


def test_the_model_keeps_its_own_budget_when_predict_allows_more(exported_model, tmp_path, capsys):
    """--max-image-pixels above the budget the model was trained with: the
    model's own check (in its transform graph) refuses the image."""
    (tmp_path / "wide.png").write_bytes(png_bomb(8000, 6000))  # 48 MP: over the model's 40 MP
    assert (
        flowers_tfx(
            ["predict", "--model", str(exported_model), str(tmp_path / "wide.png"), "--max-image-pixels", "50000000"]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'wide.png'}: the model rejected it (" in err
    assert "8000x6000 pixels (48000000), over the budget of 40000000 pixels (data.max_image_pixels)" in err
    assert "Traceback" not in err
