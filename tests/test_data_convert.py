"""Converting a folder of photos into shards: one photo at a time, then the Beam job end to end."""

import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.records.record_format import parse_record
from pipeline.cli.data_commands import main as cli_main
from pipeline.data import convert
from pipeline.data.convert import convert_folder
from pipeline.data.shards import DataError, parse_shard_filename
from pipeline.data.square_photos import ImageDecodeError, square_jpeg
from schema import LABELS

SIZE = 32  # small outputs keep the tests fast


def encoded(picture: Image.Image, image_format: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def noise_picture(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    pixels = (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)
    return Image.fromarray(pixels).convert(mode)


def decoded(jpeg: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(jpeg))
    picture.load()
    return picture


# --------------------------------------------------------------------------- one photo


@pytest.mark.parametrize(
    ("picture", "image_format"),
    [
        (noise_picture(300, 200), "JPEG"),
        (noise_picture(120, 260), "JPEG"),
        (noise_picture(50, 50, "L"), "JPEG"),
        (noise_picture(80, 60, "CMYK"), "JPEG"),
        (noise_picture(90, 40, "RGBA"), "PNG"),
        (noise_picture(64, 64, "P"), "PNG"),
        (noise_picture(20, 10), "JPEG"),  # smaller than the output: enlarged
    ],
    ids=["wide", "tall", "grayscale", "cmyk", "png-alpha", "png-palette", "tiny"],
)
def test_square_jpeg_makes_an_rgb_jpeg_square_from_any_photo(picture, image_format):
    for mode in ("crop", "pad"):
        out = decoded(square_jpeg(encoded(picture, image_format), SIZE, mode))
        assert (out.format, out.mode, out.size) == ("JPEG", "RGB", (SIZE, SIZE))


def red_left_blue_right(width=64, height=32) -> Image.Image:
    picture = Image.new("RGB", (width, height), (255, 0, 0))
    picture.paste((0, 0, 255), (width // 2, 0, width, height))
    return picture


def test_square_jpeg_turns_photos_upright_using_exif_orientation():
    # Orientation 6: the camera was turned, display the pixels rotated 90 degrees clockwise,
    # so the red left half ends up on top.
    exif = Image.Exif()
    exif[0x0112] = 6
    out = np.asarray(decoded(square_jpeg(encoded(red_left_blue_right(), exif=exif), SIZE, "pad")))
    top, bottom, left_border = out[SIZE // 4, SIZE // 2], out[3 * SIZE // 4, SIZE // 2], out[SIZE // 2, 2]
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom
    assert left_border.max() < 30, left_border  # black letterbox at the sides


def test_crop_keeps_the_centre_and_pad_keeps_everything():
    wide = encoded(red_left_blue_right(96, 32))
    cropped = np.asarray(decoded(square_jpeg(wide, SIZE, "crop")))
    padded = np.asarray(decoded(square_jpeg(wide, SIZE, "pad")))
    assert cropped[2, 2][0] > 200  # no border: the red photo reaches the corner
    assert padded[2, SIZE // 2].max() < 30  # black band above the photo
    assert padded[SIZE // 2, 2][0] > 200 and padded[SIZE // 2, SIZE - 3][2] > 200  # both halves kept


def test_transparent_pixels_become_black():
    picture = Image.new("RGBA", (40, 40), (255, 255, 255, 0))
    out = np.asarray(decoded(square_jpeg(encoded(picture, "PNG"), SIZE)))
    assert out.max() < 30


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"just some text, not a photo\n", "not an image Pillow can read"),
        (encoded(noise_picture(300, 200))[:2000], "damaged image: image file is truncated"),
        (b"", "not an image Pillow can read"),
    ],
    ids=["text", "truncated-jpeg", "empty"],
)
def test_square_jpeg_explains_why_a_file_cannot_be_converted(data, reason):
    with pytest.raises(ImageDecodeError) as error:
        square_jpeg(data, SIZE)
    assert str(error.value).startswith(reason)


# --------------------------------------------------------------------------- listing and planning


@pytest.fixture(scope="module")
def photo_tree(tmp_path_factory) -> Path:
    """A folder of class folders with photos of every kind, and files that are not photos."""
    root = tmp_path_factory.mktemp("photos")
    for label in LABELS:
        (root / label).mkdir()
    (root / "daisy" / "wide.jpg").write_bytes(encoded(noise_picture(300, 200, seed=1)))
    (root / "daisy" / "UPPER.JPG").write_bytes(encoded(noise_picture(100, 100, seed=2)))
    (root / "dandelion" / "tall.jpeg").write_bytes(encoded(noise_picture(120, 260, seed=3)))
    (root / "dandelion" / "gray.jpg").write_bytes(encoded(noise_picture(64, 48, "L", seed=4)))
    (root / "roses" / "alpha.png").write_bytes(encoded(noise_picture(90, 40, "RGBA", seed=5), "PNG"))
    (root / "roses" / "cmyk.jpg").write_bytes(encoded(noise_picture(80, 60, "CMYK", seed=6)))
    (root / "sunflowers" / "small.jpg").write_bytes(encoded(noise_picture(20, 30, seed=7)))
    (root / "sunflowers" / "corrupt.jpg").write_bytes(encoded(noise_picture(200, 200, seed=8))[:1500])
    (root / "tulips" / "notes.txt").write_text("tulips I still have to photograph\n")
    (root / "tulips" / "text.jpg").write_text("this is not a JPEG\n")
    (root / "tulips" / "tulip.png").write_bytes(encoded(noise_picture(40, 40, seed=9), "PNG"))
    (root / "tulips" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # hidden: ignored
    (root / "LICENSE.txt").write_text("photo credits\n")  # next to the class folders: ignored
    return root


GOOD = {"daisy": 2, "dandelion": 2, "roses": 2, "sunflowers": 1, "tulips": 1}
BAD = {"sunflowers/corrupt.jpg": "damaged image", "tulips/notes.txt": "not a photo", "tulips/text.jpg": "not an image"}


def test_listing_finds_photos_and_rejects_other_files(photo_tree):
    photos, rejected = convert.list_source_images(str(photo_tree))
    assert Counter(LABELS[class_id] for _, class_id in photos) == {**GOOD, "sunflowers": 2, "tulips": 2}
    assert [(Path(path).relative_to(photo_tree).as_posix(), reason) for path, reason in rejected] == [
        ("tulips/notes.txt", "not a photo: expected a .jpg, .jpeg or .png file")
    ]


def test_an_unknown_class_folder_is_an_error_naming_it_and_the_valid_names(tmp_path):
    (tmp_path / "daisy").mkdir()
    (tmp_path / "orchids").mkdir()
    with pytest.raises(DataError) as error:
        convert.list_source_images(str(tmp_path))
    message = str(error.value)
    assert "'orchids'" in message and str(tmp_path) in message
    assert "daisy, dandelion, roses, sunflowers, tulips" in message


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: None, "does not exist"),
        (lambda root: root.mkdir(), "no class folders"),
        (lambda root: (root / "roses").mkdir(parents=True), "no .jpg, .jpeg or .png files"),
    ],
    ids=["missing", "empty", "no-photos"],
)
def test_unusable_source_folders_are_errors(tmp_path, make, message):
    source = tmp_path / "source"
    make(source)
    with pytest.raises(DataError, match=message):
        convert_folder(str(source), str(tmp_path / "out"), size=SIZE)


def test_plan_spreads_photos_evenly_and_does_not_depend_on_the_folder_location():
    photos = [(f"/a/{LABELS[i % 5]}/{i}.jpg", i % 5) for i in range(23)]
    moved = [(path.replace("/a/", "/elsewhere/b/"), class_id) for path, class_id in photos]
    plan = convert.plan_shards(photos, shards=4)
    assert sorted(Counter(p.shard for p in plan).values()) == [5, 6, 6, 6]
    assert [(p.shard, p.order_key) for p in plan] == [(p.shard, p.order_key) for p in convert.plan_shards(moved, 4)]
    few = convert.plan_shards(photos[:3], shards=16)  # fewer photos than shards: no empty shard
    assert sorted(p.shard for p in few) == [0, 1, 2]


# --------------------------------------------------------------------------- the Beam job


def read_records(paths):
    return [parse_record(bytes(r)) for path in paths for r in tf.data.TFRecordDataset(path).as_numpy_iterator()]


@pytest.fixture(scope="module")
def converted(photo_tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted")
    return convert_folder(str(photo_tree), str(out), size=SIZE, shards=3)


def test_convert_writes_every_good_photo_and_reports_every_bad_file(converted, photo_tree):
    assert converted.written == sum(GOOD.values()) == 8
    assert converted.per_class == GOOD
    reported = {Path(path).relative_to(photo_tree).as_posix(): reason for path, reason in converted.skipped}
    assert set(reported) == set(BAD)
    for name, reason in BAD.items():
        assert reported[name].startswith(reason), reported[name]
    assert "truncated" in reported["sunflowers/corrupt.jpg"]


def test_convert_writes_exactly_named_valid_shards(converted):
    assert [parse_shard_filename(path)[0] for path in converted.shard_paths] == [0, 1, 2]
    for path in converted.shard_paths:
        assert parse_shard_filename(path)[1] == len(read_records([path])), path
    records = read_records(converted.shard_paths)
    assert [r["problems"] for r in records] == [[]] * 8
    assert Counter(r["label"] for r in records) == GOOD
    assert {r["image_size"] for r in records} == {(SIZE, SIZE)}


def test_convert_writes_a_skipped_report_next_to_the_shards(converted, photo_tree):
    lines = Path(converted.skipped_report).read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == sorted(str(photo_tree / name) for name in BAD)


def test_convert_refuses_an_output_folder_that_already_holds_shards(converted, photo_tree):
    with pytest.raises(DataError, match="already holds 3 shard"):
        convert_folder(str(photo_tree), converted.out_dir, size=SIZE, shards=3)


def test_cli_convert_exits_1_when_files_were_skipped_and_output_is_deterministic(
    converted, photo_tree, tmp_path, capsys
):
    out = tmp_path / "again"
    arguments = ["--from", str(photo_tree), "--out", str(out), "--size", str(SIZE), "--shards", "3"]
    status = cli_main(["data", "convert", *arguments])
    captured = capsys.readouterr()
    assert status == 1
    assert "wrote 8 records into 3 shard(s)" in captured.out
    assert f"skipped {photo_tree / 'sunflowers' / 'corrupt.jpg'}: damaged image" in captured.err
    assert "3 file(s) skipped" in captured.err
    again = {Path(p).name: Path(p).read_bytes() for p in sorted(map(str, out.glob("*.tfrec")))}
    first = {Path(p).name: Path(p).read_bytes() for p in converted.shard_paths}
    assert again == first


def test_cli_convert_usage_and_data_errors_exit_2(tmp_path, capsys):
    status = cli_main(["data", "convert", "--from", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])
    assert status == 2
    assert f"error: source folder {tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err
    status = cli_main(["data", "convert", "--from", str(tmp_path), "--out", str(tmp_path / "out"), "stray"])
    assert status == 2
    assert "Apache Beam options go after --" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["data", "convert", "--from", "a", "--out", "b", "--crop", "--pad"])
    assert exit_info.value.code == 2


@pytest.mark.shared_data
def test_convert_real_sample_photos_through_the_cli(shared_data_dir, tmp_path, capsys):
    source = shared_data_dir / "flower_photos_sample"
    if not source.is_dir():
        pytest.skip(f"{source} is absent")
    out = tmp_path / "sample-192"
    assert cli_main(["data", "convert", "--from", str(source), "--out", str(out), "--shards", "4"]) == 0
    assert "wrote 100 records into 4 shard(s)" in capsys.readouterr().out
    assert sorted(p.name for p in out.glob("*.tfrec")) == [f"flowers0{i}-25.tfrec" for i in range(4)]
    assert (out / "skipped.txt").read_text() == ""
    records = read_records(sorted(map(str, out.glob("*.tfrec"))))
    assert [r["problems"] for r in records] == [[]] * 100
    assert Counter(r["label"] for r in records) == {label: 20 for label in LABELS}
    assert {r["image_size"] for r in records} == {(192, 192)}
