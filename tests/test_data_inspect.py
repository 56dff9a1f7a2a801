"""Inspecting shards: counts, sizes, and every kind of damage reported instead of raised."""

import json
import re
from pathlib import Path

import pytest
import tensorflow as tf

from pipeline.cli.data_commands import main as cli_main
from pipeline.data import synth
from pipeline.data.inspect import format_report, inspect_shards
from pipeline.data.shards import DataError, example_bytes, shard_filename, write_shard
from schema import LABELS

SIZE = 32


@pytest.fixture(scope="module")
def synth_shards(tmp_path_factory) -> Path:
    """22 synthetic records in 4 shards (6, 6, 5, 5)."""
    out = tmp_path_factory.mktemp("synth")
    synth.write_synthetic_shards(str(out), images=22, shards=4, seed=4, size=SIZE)
    return out


def test_counts_of_good_shards(synth_shards):
    report = inspect_shards(str(synth_shards / "*.tfrec"))
    assert report.ok
    assert [(Path(s.path).name, s.records, s.count_matches, s.error) for s in report.shards] == [
        ("flowers00-6.tfrec", 6, True, None),
        ("flowers01-6.tfrec", 6, True, None),
        ("flowers02-5.tfrec", 5, True, None),
        ("flowers03-5.tfrec", 5, True, None),
    ]
    assert report.total_records == 22
    assert dict(report.per_class) == {"daisy": 5, "dandelion": 5, "roses": 4, "sunflowers": 4, "tulips": 4}
    assert report.image_sizes == {f"{SIZE}x{SIZE}": 22} and report.size_feature == {f"{SIZE}x{SIZE}": 22}
    assert report.problems == []


def test_a_folder_stands_for_its_tfrec_files(synth_shards):
    assert inspect_shards(str(synth_shards)).total_records == 22


def test_a_pattern_matching_nothing_is_an_error_naming_it(tmp_path):
    pattern = str(tmp_path / "nothing-*.tfrec")
    with pytest.raises(DataError, match=re.escape(f"no files match {pattern}")):
        inspect_shards(pattern)


def copy_shards(source: Path, target: Path) -> Path:
    target.mkdir()
    for path in source.glob("*.tfrec"):
        (target / path.name).write_bytes(path.read_bytes())
    return target


def test_truncated_and_corrupted_shards_are_reported_not_raised(synth_shards, tmp_path):
    damaged = copy_shards(synth_shards, tmp_path / "damaged")
    truncated = damaged / "flowers01-6.tfrec"
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size * 2 // 3])
    corrupted = damaged / "flowers02-5.tfrec"
    data = bytearray(corrupted.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupted.write_bytes(bytes(data))

    report = inspect_shards(str(damaged / "*.tfrec"))
    assert not report.ok
    by_name = {Path(s.path).name: s for s in report.shards}
    assert by_name["flowers00-6.tfrec"].error is None
    cut = by_name["flowers01-6.tfrec"]
    assert cut.path == str(truncated)
    assert "DataLossError" in cut.error and "truncated" in cut.error
    assert cut.records < 6 and cut.count_matches is False
    assert "DataLossError" in by_name["flowers02-5.tfrec"].error
    assert {s.path for s in report.unreadable_shards} == {str(truncated), str(corrupted)}

    text = format_report(report)
    assert "flowers01-6.tfrec" in text and "UNREADABLE: DataLossError" in text
    assert "NOT OK" in text and "2 unreadable file(s)" in text


def test_a_wrong_count_in_the_name_is_reported(synth_shards, tmp_path):
    renamed = copy_shards(synth_shards, tmp_path / "renamed")
    (renamed / "flowers03-5.tfrec").rename(renamed / "flowers03-9.tfrec")
    report = inspect_shards(str(renamed / "*.tfrec"))
    assert [Path(s.path).name for s in report.miscounted_shards] == ["flowers03-9.tfrec"]
    assert not report.ok
    assert "NAME SAYS 9" in format_report(report)


def bad_records() -> list[bytes]:
    jpeg = synth.synthetic_jpeg(0, 0, 1, SIZE)
    good = example_bytes(jpeg, 1, SIZE, SIZE)
    relabelled = tf.train.Example.FromString(good)
    relabelled.features.feature["label"].bytes_list.value[0] = b"roses"
    out_of_range = tf.train.Example.FromString(good)
    out_of_range.features.feature["class"].int64_list.value[0] = 9
    broken_image = tf.train.Example.FromString(good)
    broken_image.features.feature["image"].bytes_list.value[0] = jpeg[: len(jpeg) // 2]
    return [good, relabelled.SerializeToString(), out_of_range.SerializeToString(), broken_image.SerializeToString()]


def test_every_bad_record_is_listed_with_shard_index_and_problem(tmp_path):
    path = str(tmp_path / shard_filename(0, 4))
    write_shard(path, bad_records())
    report = inspect_shards(path)
    assert not report.ok and report.total_records == 4 and report.shards[0].count_matches
    found = [(p.path, p.index, p.problem.split(":")[0]) for p in report.problems]
    assert found == [
        (path, 1, "label 'roses' does not match class 1 ('dandelion')"),
        (path, 2, "class 9 out of range 0..4"),
        (path, 3, "image does not decode"),
    ]
    assert report.per_class["(no valid class)"] == 1
    text = format_report(report)
    assert "flowers00-4.tfrec record 2: class 9 out of range 0..4" in text
    assert "3 problem(s) in records" in text


def test_cli_inspect_exit_codes_and_json(synth_shards, tmp_path, capsys):
    assert cli_main(["data", "inspect", str(synth_shards / "*.tfrec")]) == 0
    assert "OK: every record matches the format" in capsys.readouterr().out

    assert cli_main(["data", "inspect", str(synth_shards), "--json"]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert as_json["ok"] is True and as_json["total_records"] == 22 and len(as_json["shards"]) == 4

    bad = str(tmp_path / shard_filename(0, 4))
    write_shard(bad, bad_records())
    assert cli_main(["data", "inspect", bad]) == 1
    assert "NOT OK" in capsys.readouterr().out

    assert cli_main(["data", "inspect", str(tmp_path / "missing-*.tfrec")]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: no files match") and "Traceback" not in captured.err


@pytest.mark.shared_data
def test_real_flowers_192_shards(shared_data_dir):
    shards = shared_data_dir / "flowers-192"
    if not shards.is_dir():
        pytest.skip(f"{shards} is absent")
    report = inspect_shards(str(shards / "*.tfrec"))
    assert report.ok, format_report(report)
    expected = [(f"flowers{i:02d}-230.tfrec", 230) for i in range(12)]
    assert [(Path(s.path).name, s.records) for s in report.shards] == expected
    assert report.total_records == 2760
    assert set(report.per_class) == set(LABELS) and sum(report.per_class.values()) == 2760
    assert report.per_class.most_common(1)[0][0] == "dandelion"  # the README says it is the largest class
    assert report.image_sizes == {"192x192": 2760} and report.size_feature == {"192x192": 2760}


def test_help_works_without_loading_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys; from pipeline.cli.data_commands import main\n"
        "try:\n    main(['data', 'inspect', '--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "assert 'tensorflow' not in sys.modules and 'apache_beam' not in sys.modules, 'heavy import at --help'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert result.returncode == 0, result.stderr
    assert "PATTERN" in result.stdout and "exit status: 0 all good, 1 problems found" in result.stdout
