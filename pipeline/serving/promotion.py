"""``models promote`` and ``models rollback``: one production directory, one version.

TF Serving watching a production directory loads the numbered folders in it.
Promotion keeps exactly one there, always complete:

    DIR/<version>/              the current version (the only numbered folder)
    DIR/.promoting-<version>-*/ a copy in progress (hidden: TF Serving ignores it)
    DIR/.previous/<n>-<version>/     the versions it replaced; the highest n is the
                                     one ``rollback`` restores (a stack)
    DIR/.rolled-back/<n>-<version>/  the versions ``rollback`` took out
    DIR/.promotion-journal.json the renames of the operation in progress
    DIR/promotions.jsonl        append-only log of every promotion and rollback
    DIR/.claims/lock            held while an operation runs: one at a time (the
                                serving directory's lock, components/serving_claim.py,
                                which the Pusher takes too)

Promote copies the blessed version into a staging folder first (the slow part,
which a crash can only leave as a stale staging folder), then writes the
journal, then renames: staging -> DIR/<version>, old current -> .previous.
Rollback renames .previous/<top> -> DIR/<version>, then the current one out.
In between the two renames TF Serving briefly sees two versions, never none.
Renames only: a version that comes back is the same bytes that left.

If a run stops half-way (a crash, a kill), the journal says what remains to
do; the next promote or rollback finishes it first, and removes staging
folders that no journal refers to. The ``.previous`` entries carry a sequence
number because one version may be promoted (and replaced) more than once.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from components.shared import serving_claim, serving_layout
from components.shared.common import utc_timestamp
from pipeline.errors import EXIT_NOT_BLESSED, EXIT_PROBLEMS, FlowersError
from pipeline.serving import blessing_check, durable_files
from pipeline.serving import versions as pushed_versions

PREVIOUS_DIR = ".previous"
ROLLED_BACK_DIR = ".rolled-back"
# Not the Pusher's ".staging-": recovery must never delete a push in progress.
STAGING_PREFIX = ".promoting-"
JOURNAL_FILE = ".promotion-journal.json"
LOG_FILE = "promotions.jsonl"


class PromotionError(FlowersError):
    """A promotion or rollback that did not happen: a bad path or directory (exit status 2)."""


class PromotionRefused(PromotionError):
    """The request is understood but not allowed: unblessed, already current, nothing to restore, busy."""

    exit_status = EXIT_PROBLEMS


class PromotionNotBlessed(PromotionRefused):
    """Refused because the version is not blessed, or its blessing cannot be shown (exit status 3)."""

    exit_status = EXIT_NOT_BLESSED


class AlreadyCurrent(PromotionRefused):
    """The version is already the current one: nothing to do (the command exits 0)."""


@dataclass
class Outcome:
    """What a promote or rollback did, for the message and the log."""

    action: str
    version: int
    replaced: int | None
    target: Path
    kept_at: Path | None = None  # where the replaced version went
    recovered: list[str] = field(default_factory=list)  # interrupted work finished first


# ----------------------------------------------------------------- file operations


def refuse_remote(*paths) -> None:
    """Promotion is a sequence of atomic renames, which object stores (``gs://``)
    do not have; a directory there is refused before anything is touched."""
    for path in paths:
        if serving_layout.is_remote(str(path)):
            raise PromotionError(
                f"{path}: promotion and rollback need a local directory (they rename folders "
                "atomically, which an object store cannot); use a local or mounted path, "
                "or --endpoint for Vertex AI"
            )


def move(source: Path, destination: Path) -> None:
    """One atomic rename of a journaled operation (tests interrupt it)."""
    os.rename(source, destination)


@contextmanager
def _locked(target: Path) -> Iterator[None]:
    """One promote or rollback at a time per production directory."""

    def busy(holder: str) -> PromotionRefused:
        return PromotionRefused(f"{target}: another promote or rollback ({holder}) is running on it; try again later")

    with serving_claim.locked(str(target), busy):
        yield


# ------------------------------------------------------------------ directory state


def current_version(target: Path) -> int | None:
    """The version the production directory serves; an error if it holds several
    (outside an interrupted operation, which recovery finishes first)."""
    versions = list(pushed_versions.version_dirs(target))
    if len(versions) > 1 and not (target / JOURNAL_FILE).exists():
        raise PromotionError(
            f"{target}: holds {len(versions)} versions ({', '.join(map(str, versions))}); a production "
            "directory managed by 'models promote' holds exactly one (is it a pipeline's serving directory?)"
        )
    return versions[0] if versions else None


def _stack(target: Path, folder_name: str) -> list[tuple[int, int, Path]]:
    """``[(sequence, version, path)]`` in ``DIR/<folder_name>``, oldest first."""
    folder = target / folder_name
    entries = []
    if folder.is_dir():
        for path in folder.iterdir():
            sequence, _, version = path.name.partition("-")
            if sequence.isdigit() and version.isdigit():
                entries.append((int(sequence), int(version), path))
    return sorted(entries)


def _next_slot(target: Path, folder_name: str, version: int) -> Path:
    entries = _stack(target, folder_name)
    sequence = entries[-1][0] + 1 if entries else 1
    return target / folder_name / f"{sequence:06d}-{version}"


def previous_versions(target: Path) -> list[int]:
    """The versions rollback can restore, the next one first."""
    return [version for _, version, _ in reversed(_stack(target, PREVIOUS_DIR))]


def read_log(target: Path) -> list[dict]:
    """Every entry of ``promotions.jsonl``, oldest first."""
    path = target / LOG_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _append_log(target: Path, entry: dict) -> None:
    durable_files.append_line(target / LOG_FILE, json.dumps(entry, sort_keys=True))


# ------------------------------------------------------------------ journaled renames


def _apply(target: Path, journal: dict) -> None:
    """Does the journal's renames that are not done yet, logs it once, drops the journal.

    Each rename is done when its source is gone and its destination exists,
    so running this again after a crash at any point finishes the work.
    """
    for source_name, destination_name in journal["renames"]:
        source, destination = target / source_name, target / destination_name
        if destination.exists() and not source.exists():
            continue
        if not source.exists():
            raise PromotionError(
                f"{target / JOURNAL_FILE}: cannot finish the interrupted {journal['action']}: "
                f"neither {source} nor {destination} exists; fix the directory by hand, then delete the journal"
            )
        if destination.exists():
            raise PromotionError(
                f"{target / JOURNAL_FILE}: cannot finish the interrupted {journal['action']}: both {source} "
                f"and {destination} exist; fix the directory by hand, then delete the journal"
            )
        destination.parent.mkdir(exist_ok=True)
        move(source, destination)
        durable_files.fsync_dir(destination.parent)
        durable_files.fsync_dir(source.parent)
    if all(entry.get("id") != journal["id"] for entry in read_log(target)):
        _append_log(target, journal["log"])
    (target / JOURNAL_FILE).unlink()
    durable_files.fsync_dir(target)


def _run_journaled(target: Path, action: str, renames: list[tuple[Path, Path]], log: dict) -> None:
    operation_id = uuid.uuid4().hex
    journal = {
        "id": operation_id,
        "action": action,
        "renames": [[str(s.relative_to(target)), str(d.relative_to(target))] for s, d in renames],
        "log": {"id": operation_id, "action": action, **log},
    }
    durable_files.write_atomically(target / JOURNAL_FILE, json.dumps(journal, indent=2))
    _apply(target, journal)


def _read_journal(path: Path) -> dict:
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
        missing = [key for key in ("id", "action", "renames", "log") if key not in journal]
    except (OSError, ValueError, TypeError) as error:
        raise PromotionError(f"{path}: unreadable journal ({error}); inspect {path.parent} by hand") from None
    if missing:
        raise PromotionError(f"{path}: journal without {', '.join(missing)}; inspect {path.parent} by hand")
    return journal


def _recover_unlocked(target: Path) -> list[str]:
    done = []
    journal_path = target / JOURNAL_FILE
    if journal_path.is_file():
        journal = _read_journal(journal_path)
        _apply(target, journal)
        done.append(f"finished the interrupted {journal['action']} of version {journal['log'].get('version')}")
    (target / (JOURNAL_FILE + ".tmp")).unlink(missing_ok=True)
    for staging in sorted(target.glob(STAGING_PREFIX + "*")):
        shutil.rmtree(staging)
        done.append(f"removed the unfinished copy {staging}")
    return done


def recover(target: Path) -> list[str]:
    """Finishes an interrupted promote or rollback in ``target`` and removes
    stale staging folders; returns what it did, one sentence each.

    promote and rollback do this first themselves; calling it before them
    lets a caller report it even when the operation is then refused.
    """
    target = target.absolute()
    if not target.is_dir():
        return []
    current_version(target)  # not a production directory: touch nothing
    with _locked(target):
        return _recover_unlocked(target)


# ------------------------------------------------------------------ the operations


def _prepare_target(target: Path, create: bool) -> None:
    if target.exists() and not target.is_dir():
        raise PromotionError(f"{target}: not a directory")
    if not target.exists():
        if not create:
            raise PromotionError(f"{target}: no such directory")
        if not target.parent.is_dir():
            raise PromotionError(f"{target}: its parent folder {target.parent} does not exist")
        target.mkdir()


def promote(source_dir: Path, version: int, target: Path, metadata_path: Path | None = None) -> Outcome:
    """Makes ``source_dir/version`` (a blessed, pushed version) the one version in ``target``.

    Raises PromotionNotBlessed for a version not shown to be blessed and
    AlreadyCurrent when it is already the one there."""
    source_dir, target = source_dir.absolute(), target.absolute()
    if target == source_dir:
        raise PromotionError(f"{target}: is the serving directory the version comes from; promote to another one")
    source = pushed_versions.version_dirs(source_dir).get(version)
    if source is None:
        available = ", ".join(map(str, pushed_versions.version_dirs(source_dir))) or "none"
        raise PromotionError(f"{source_dir}: has no version {version} (versions: {available})")
    if not pushed_versions.is_saved_model(source):
        raise PromotionError(f"{source}: not a SavedModel (no {pushed_versions.SAVED_MODEL_FILE})")
    try:
        manifest = blessing_check.check_blessed(source, metadata_path)
    except blessing_check.NotBlessed as error:
        raise PromotionNotBlessed(str(error)) from None
    _prepare_target(target, create=True)
    current_version(target)  # not a production directory: touch nothing
    with _locked(target):
        recovered = _recover_unlocked(target)
        current = current_version(target)
        if current == version:
            raise AlreadyCurrent(f"{target}: version {version} is already the current version; nothing to do")
        staging = target / f"{STAGING_PREFIX}{version}-{uuid.uuid4().hex[:8]}"
        try:
            durable_files.copy_into_staging(source, staging)
        except OSError as error:
            raise PromotionError(f"copying {source} into {target} failed ({error}); {target} is unchanged") from None
        renames = [(staging, target / str(version))]
        kept_at = None
        if current is not None:
            kept_at = _next_slot(target, PREVIOUS_DIR, current)
            renames.append((target / str(current), kept_at))
        log = {
            "at": utc_timestamp(),
            "version": version,
            "replaced": current,
            "source": str(source),
            "model_uri": manifest.get("model_uri"),
        }
        _run_journaled(target, "promote", renames, log)
    return Outcome("promote", version, current, target, kept_at, recovered)


def rollback(target: Path) -> Outcome:
    """Brings back the version the current one replaced (the top of ``.previous``)."""
    target = target.absolute()
    _prepare_target(target, create=False)
    current_version(target)  # not a production directory: touch nothing
    with _locked(target):
        recovered = _recover_unlocked(target)
        current = current_version(target)
        stack = _stack(target, PREVIOUS_DIR)
        if not stack:
            raise PromotionRefused(f"{target}: no earlier version to roll back to ({PREVIOUS_DIR} is empty)")
        _, restored, restored_from = stack[-1]
        if restored == current:
            raise PromotionError(f"{restored_from}: is the same version as the current one; inspect {target} by hand")
        renames = [(restored_from, target / str(restored))]
        kept_at = None
        if current is not None:
            kept_at = _next_slot(target, ROLLED_BACK_DIR, current)
            renames.append((target / str(current), kept_at))
        log = {"at": utc_timestamp(), "version": restored, "replaced": current}
        _run_journaled(target, "rollback", renames, log)
    return Outcome("rollback", restored, current, target, kept_at, recovered)
