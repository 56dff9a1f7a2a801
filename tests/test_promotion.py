"""``models promote`` and ``models rollback``: one complete version in production, always.

The versions here are fabricated (a few files with a push manifest and a
blessing folder), which is all promotion looks at; crashes are real: a child
process is killed with ``os._exit`` in the middle of a copy or between two
renames, and the next command must clean up or finish the work.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from file_trees import tree_hashes

from pipeline.cli.main import main as flowers_tfx
from pipeline.serving import durable_files, promotion
from pipeline.serving.promotion import PromotionError, PromotionRefused

PROJECT = Path(__file__).resolve().parents[1]


def make_version(serving: Path, version: int, blessing: str | None = "BLESSED", manifest: bool = True) -> Path:
    """A pushed version: SavedModel-like files, a push manifest, and a blessing folder
    holding ``blessing`` (BLESSED, NOT_BLESSED, or nothing at all for None)."""
    folder = serving / str(version)
    (folder / "variables").mkdir(parents=True)
    (folder / "assets.extra").mkdir()
    (folder / "saved_model.pb").write_bytes(os.urandom(2000) + str(version).encode())
    (folder / "variables" / "variables.index").write_bytes(os.urandom(300))
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(os.urandom(50_000))
    blessing_dir = serving.parent / "pipeline" / "Evaluator" / "blessing" / str(version)
    blessing_dir.mkdir(parents=True)
    if blessing:
        (blessing_dir / blessing).write_text("")
    if manifest:
        (folder / "assets.extra" / "push.json").write_text(
            json.dumps(
                {
                    "version": version,
                    "model_uri": f"/pipeline/Trainer/model/{version}",
                    "model_artifact_id": version,
                    "blessing_uri": str(blessing_dir),
                    "pushed_at": "2026-01-01T00:00:00Z",
                }
            )
        )
    return folder


def numbered(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.isdigit())


def hidden_work(folder: Path) -> list[str]:
    """Leftovers of unfinished work: staging folders and journals."""
    prefixes = (promotion.STAGING_PREFIX, promotion.JOURNAL_FILE)
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(prefixes))


@pytest.fixture
def serving(tmp_path) -> Path:
    folder = tmp_path / "work" / "serving"
    for version in (100, 200, 300):
        make_version(folder, version)
    return folder


@pytest.fixture
def prod(tmp_path) -> Path:
    return tmp_path / "prod"


def test_promote_makes_the_version_the_only_one_in_the_directory(serving, prod):
    outcome = promotion.promote(serving, 200, prod)

    assert (outcome.version, outcome.replaced) == (200, None)
    assert numbered(prod) == ["200"]
    assert tree_hashes(prod / "200") == tree_hashes(serving / "200")
    assert hidden_work(prod) == []
    [entry] = promotion.read_log(prod)
    assert (entry["action"], entry["version"], entry["replaced"]) == ("promote", 200, None)
    assert entry["source"] == str(serving / "200")


@pytest.mark.parametrize(
    "blessing, manifest, reason",
    [
        ("NOT_BLESSED", True, r"did not bless version 100 \(NOT_BLESSED\)"),
        (None, True, "the blessing of version 100 is missing"),
        ("BLESSED", False, "no push manifest"),
    ],
)
def test_a_version_that_was_not_blessed_is_refused(tmp_path, prod, blessing, manifest, reason):
    serving = tmp_path / "serving"
    make_version(serving, 100, blessing=blessing, manifest=manifest)

    with pytest.raises(PromotionRefused, match=reason):
        promotion.promote(serving, 100, prod)
    assert not prod.exists()


def test_a_manifest_without_blessing_is_refused(tmp_path, prod):
    serving = tmp_path / "serving"
    version = make_version(serving, 100)
    manifest = json.loads((version / "assets.extra" / "push.json").read_text())
    del manifest["blessing_uri"]
    (version / "assets.extra" / "push.json").write_text(json.dumps(manifest))

    with pytest.raises(PromotionRefused, match="names no blessing"):
        promotion.promote(serving, 100, prod)


def write_blessing_to_metadata(metadata_path: Path, blessing_uri: str, blessed: int, model_id: int) -> None:
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(metadata_path)
    store = metadata_store.MetadataStore(config)
    type_id = store.put_artifact_type(metadata_store_pb2.ArtifactType(name="ModelBlessing"))
    artifact = metadata_store_pb2.Artifact(type_id=type_id, uri=blessing_uri)
    artifact.custom_properties["blessed"].int_value = blessed
    artifact.custom_properties["current_model_id"].int_value = model_id
    store.put_artifacts([artifact])


@pytest.mark.parametrize(
    "blessed, model_id, reason",
    [(0, 100, "records .* as not blessed"), (1, 7, "this blessing is for model artifact 7")],
)
def test_ml_metadata_can_refuse_what_the_blessing_folder_allows(serving, prod, blessed, model_id, reason):
    metadata = serving.parent / "metadata.sqlite"
    blessing_uri = json.loads((serving / "100" / "assets.extra" / "push.json").read_text())["blessing_uri"]
    write_blessing_to_metadata(metadata, blessing_uri, blessed, model_id)

    with pytest.raises(PromotionRefused, match=reason):
        promotion.promote(serving, 100, prod, metadata)
    write_blessing_to_metadata(metadata.with_name("other.sqlite"), blessing_uri, 1, 100)
    assert promotion.promote(serving, 100, prod, metadata.with_name("other.sqlite")).version == 100


def test_the_current_version_is_not_promoted_again(serving, prod):
    promotion.promote(serving, 100, prod)
    with pytest.raises(PromotionRefused, match="version 100 is already the current version"):
        promotion.promote(serving, 100, prod)
    assert len(promotion.read_log(prod)) == 1


def test_a_failed_copy_leaves_the_directory_as_it_was(serving, prod, monkeypatch):
    promotion.promote(serving, 100, prod)
    before = tree_hashes(prod)

    def copy_half_then_fail(source: Path, destination: Path) -> None:
        (destination / "variables").mkdir(parents=True)
        (destination / "saved_model.pb").write_bytes((source / "saved_model.pb").read_bytes())
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(durable_files, "copy_version_files", copy_half_then_fail)
    with pytest.raises(PromotionError, match="No space left on device.*is unchanged"):
        promotion.promote(serving, 200, prod)

    assert tree_hashes(prod) == before
    assert numbered(prod) == ["100"] and hidden_work(prod) == []


def run_killed_child(code: str) -> None:
    """Runs ``code`` in a child Python that is expected to die with exit status 9."""
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 9, result.stderr


def test_a_copy_killed_half_way_is_cleaned_up_by_the_next_command(serving, prod):
    promotion.promote(serving, 100, prod)
    before = tree_hashes(prod)

    run_killed_child(f"""
import os, shutil
from pathlib import Path
from pipeline.serving import durable_files, promotion
def copy_then_die(source, destination):
    shutil.copytree(source / "variables", destination / "variables")
    os._exit(9)
durable_files.copy_version_files = copy_then_die
promotion.promote(Path({str(serving)!r}), 200, Path({str(prod)!r}))
""")
    assert numbered(prod) == ["100"]  # TF Serving still sees only the old version, whole
    [staging] = hidden_work(prod)
    assert staging.startswith(promotion.STAGING_PREFIX)
    assert tree_hashes(prod) != before  # (the leftover copy is there)

    assert flowers_tfx(["models", "rollback", "--to", str(prod)]) == 1  # nothing to restore, but it cleans
    assert hidden_work(prod) == []
    assert tree_hashes(prod) == before


@pytest.mark.parametrize("renames_before_crash", [1, 2])
def test_a_promotion_killed_between_renames_is_finished_by_the_next_command(serving, prod, renames_before_crash):
    promotion.promote(serving, 100, prod)
    original = tree_hashes(prod / "100")

    run_killed_child(f"""
import os
from pathlib import Path
from pipeline.serving import promotion
done = []
def move_then_die(source, destination):
    os.rename(source, destination)
    done.append(destination)
    if len(done) == {renames_before_crash}:
        os._exit(9)
promotion.move = move_then_die
promotion.promote(Path({str(serving)!r}), 200, Path({str(prod)!r}))
""")
    assert (prod / promotion.JOURNAL_FILE).exists()
    assert "200" in numbered(prod)  # the new version went in first: never an empty directory

    recovered = promotion.recover(prod)

    assert recovered == ["finished the interrupted promote of version 200"]
    assert numbered(prod) == ["200"] and hidden_work(prod) == []
    assert [(e["action"], e["version"]) for e in promotion.read_log(prod)] == [("promote", 100), ("promote", 200)]
    promotion.rollback(prod)
    assert numbered(prod) == ["100"] and tree_hashes(prod / "100") == original


def test_a_rollback_killed_between_renames_is_finished_by_the_next_promote(serving, prod):
    promotion.promote(serving, 100, prod)
    promotion.promote(serving, 200, prod)

    run_killed_child(f"""
import os
from pathlib import Path
from pipeline.serving import promotion
def move_then_die(source, destination):
    os.rename(source, destination)
    os._exit(9)
promotion.move = move_then_die
promotion.rollback(Path({str(prod)!r}))
""")
    assert numbered(prod) == ["100", "200"]

    outcome = promotion.promote(serving, 300, prod)

    assert outcome.recovered == ["finished the interrupted rollback of version 100"]
    assert (outcome.replaced, numbered(prod)) == (100, ["300"])
    assert [(e["action"], e["version"]) for e in promotion.read_log(prod)] == [
        ("promote", 100),
        ("promote", 200),
        ("rollback", 100),
        ("promote", 300),
    ]


def test_rollback_restores_the_earlier_files_byte_for_byte(serving, prod):
    promotion.promote(serving, 100, prod)
    first = tree_hashes(prod / "100")
    first_inode = (prod / "100" / "saved_model.pb").stat().st_ino
    promotion.promote(serving, 200, prod)
    assert numbered(prod) == ["200"]

    outcome = promotion.rollback(prod)

    assert (outcome.version, outcome.replaced) == (100, 200)
    assert numbered(prod) == ["100"]
    assert tree_hashes(prod / "100") == first
    assert (prod / "100" / "saved_model.pb").stat().st_ino == first_inode  # renamed back, not copied
    assert tree_hashes(outcome.kept_at) == tree_hashes(serving / "200")
    assert outcome.kept_at.parent.name == promotion.ROLLED_BACK_DIR


def test_promote_twice_then_roll_back_twice(serving, prod):
    for version in (100, 200, 300):
        promotion.promote(serving, version, prod)
    assert promotion.previous_versions(prod) == [200, 100]

    assert promotion.rollback(prod).version == 200
    assert promotion.rollback(prod).version == 100
    assert numbered(prod) == ["100"]
    assert tree_hashes(prod / "100") == tree_hashes(serving / "100")
    with pytest.raises(PromotionRefused, match="no earlier version"):
        promotion.rollback(prod)
    log = [(e["action"], e["version"], e["replaced"]) for e in promotion.read_log(prod)]
    assert log == [
        ("promote", 100, None),
        ("promote", 200, 100),
        ("promote", 300, 200),
        ("rollback", 200, 300),
        ("rollback", 100, 200),
    ]


def test_a_version_can_be_promoted_again_after_it_was_replaced(serving, prod):
    for version in (100, 200, 100, 300):
        promotion.promote(serving, version, prod)
    assert promotion.previous_versions(prod) == [100, 200, 100]
    assert [promotion.rollback(prod).version for _ in range(3)] == [100, 200, 100]


def test_a_directory_holding_several_versions_is_left_alone(serving, prod):
    prod.mkdir()
    (prod / "1").mkdir()
    (prod / "2").mkdir()
    (prod / ".promoting-5-abc").mkdir()

    with pytest.raises(PromotionError, match="holds 2 versions"):
        promotion.promote(serving, 100, prod)
    with pytest.raises(PromotionError, match="holds 2 versions"):
        promotion.rollback(prod)
    assert sorted(p.name for p in prod.iterdir()) == [".promoting-5-abc", "1", "2"]


def test_command_line_exit_statuses_and_messages(serving, prod, capsys):
    work = ["--serving-dir", str(serving)]
    assert flowers_tfx(["models", "promote", "100", "--to", str(prod), *work]) == 0
    assert f"Promoted version 100 to {prod}" in capsys.readouterr().out

    assert flowers_tfx(["models", "promote", "100", "--to", str(prod), *work]) == 0  # nothing to do
    assert "version 100 is already the current version; nothing to do" in capsys.readouterr().out

    assert flowers_tfx(["models", "promote", "999", "--to", str(prod), *work]) == 2
    assert f"error: {serving}: has no version 999 (versions: 100, 200, 300)" in capsys.readouterr().err

    not_a_dir = prod.parent / "file"
    not_a_dir.write_text("")
    assert flowers_tfx(["models", "promote", "200", "--to", str(not_a_dir), *work]) == 2
    assert f"error: {not_a_dir}: not a directory" in capsys.readouterr().err

    assert flowers_tfx(["models", "promote", "200", "--to", str(prod), "--work-dir", str(serving.parent)]) == 0
    assert "version 100 is kept in" in capsys.readouterr().out
    assert flowers_tfx(["models", "rollback", "--to", str(prod)]) == 0
    assert f"Rolled {prod} back to version 100" in capsys.readouterr().out
    assert flowers_tfx(["models", "rollback", "--to", str(prod.parent / "missing")]) == 2


def test_unblessed_promotion_exits_3_naming_the_blessing(tmp_path, prod, capsys):
    serving = tmp_path / "serving"
    version = make_version(serving, 100, blessing="NOT_BLESSED")
    blessing_uri = json.loads((version / "assets.extra" / "push.json").read_text())["blessing_uri"]

    assert flowers_tfx(["models", "promote", "100", "--to", str(prod), "--serving-dir", str(serving)]) == 3
    assert capsys.readouterr().err.startswith(f"error: {blessing_uri}: the Evaluator did not bless version 100")
