"""Claims on a serving directory: many writers, one version each, one model once.

Several pipelines may push into one serving directory at once (a schedule
and a person, a local run and a Vertex AI run on the same ``gs://`` folder).
A Pusher therefore claims its version number before it copies anything, and
``models promote``/``rollback`` and the Pusher take the same directory lock:

    <dir>/.claims/lock           the directory's lock: held while a writer decides
                                 (checks what is served, picks and claims a number)
    <dir>/.claims/<version>.json a version claimed by a push in progress: its
                                 holder (pid, host, start) and the model it copies

Every claim is created atomically, so that of two writers exactly one gets
it: locally by linking a complete file into place (``link`` fails when the
name exists), on ``gs://`` by a conditional write (``if_generation_match=0``,
google-cloud-storage: HTTP 412 when the object exists). A writer that loses a
version claim takes the next number. The lock is a claim too: on a local
folder an ``flock`` on its file (the kernel drops it when its holder dies);
on ``gs://`` a claim object, which a writer that finds it stale (its holder's
process is gone, or on another host it is older than
``REMOTE_LOCK_STALE_SECONDS``) deletes with a condition on its generation, so
that it never deletes a newer holder's.

Under the lock a Pusher looks for its model among the versions served *and*
the live version claims: a model another writer is still copying is waited
for, never pushed twice. Claims whose holder died (a writer killed
mid-copy) are removed under the lock by the next writer, with the staging
folder it left. The copy itself runs outside the lock, under its version
claim; TF Serving ignores ``.claims/`` as it ignores every non-numeric name.

Standard library only, except google-cloud-storage for ``gs://`` (imported then).
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from components.shared.common import (
    HOLDER_GONE,
    HOLDER_UNKNOWN,
    describe_holder,
    exclusive_lock,
    holder_record,
    holder_state,
    read_holder,
)

CLAIMS_DIR = ".claims"
LOCK_NAME = "lock"
CLAIM_SUFFIX = ".json"
# A lock object on gs:// whose holder cannot be checked (another host) is
# taken for stale after this long: a writer holds it for a few seconds.
REMOTE_LOCK_STALE_SECONDS = 600
# A version claim of another host is stale after this long (a copy that never finished).
REMOTE_CLAIM_STALE_SECONDS = 6 * 3600


class Busy(Exception):
    """The directory's lock is held by another writer (``str()`` names it)."""


# ---------------------------------------------------------------- claim stores


class _LocalClaims:
    """Claims as files in ``<dir>/.claims/`` (a local path or ``file://``)."""

    def __init__(self, folder: str):
        self.folder = Path(folder)

    def create(self, name: str, text: str) -> bool:
        """Writes ``name`` with ``text`` if no such claim exists; False if one does."""
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = self.folder / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, self.folder / name)  # atomic, and fails when the name exists
        except FileExistsError:
            return False
        finally:
            temporary.unlink()
        return True

    def read(self, name: str) -> str | None:
        try:
            return (self.folder / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def delete(self, name: str) -> None:
        (self.folder / name).unlink(missing_ok=True)

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return [path.name for path in self.folder.iterdir() if not path.name.startswith(".")]

    @contextmanager
    def locked(self, busy: Callable[[str], Exception]) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self.folder / LOCK_NAME, busy):
            yield


class _GcsClaims:
    """Claims as objects under ``gs://bucket/<dir>/.claims/``, created with
    ``if_generation_match=0`` (google-cloud-storage)."""

    def __init__(self, url: str):
        from google.cloud import storage  # only for gs://

        bucket, _, prefix = url[len("gs://") :].partition("/")
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = storage.Client()
        self.bucket = self.client.bucket(bucket)

    def _blob(self, name: str):
        return self.bucket.blob(self.prefix + name)

    def create(self, name: str, text: str) -> bool:
        from google.api_core import exceptions

        try:
            self._blob(name).upload_from_string(text, content_type="application/json", if_generation_match=0)
        except exceptions.PreconditionFailed:
            return False
        return True

    def read(self, name: str) -> str | None:
        return (self.read_with_generation(name) or (None, None))[0]

    def read_with_generation(self, name: str) -> tuple[str, int] | None:
        from google.api_core import exceptions

        blob = self._blob(name)
        try:
            text = blob.download_as_text()
        except exceptions.NotFound:
            return None
        return text, blob.generation

    def delete(self, name: str, generation: int | None = None) -> None:
        from google.api_core import exceptions

        try:
            self._blob(name).delete(if_generation_match=generation)
        except (exceptions.NotFound, exceptions.PreconditionFailed):
            pass  # gone already, or a newer holder's: not ours to delete

    def names(self) -> list[str]:
        return [
            blob.name[len(self.prefix) :]
            for blob in self.client.list_blobs(self.bucket, prefix=self.prefix)
            if "/" not in blob.name[len(self.prefix) :]
        ]

    @contextmanager
    def locked(self, busy: Callable[[str], Exception]) -> Iterator[None]:
        record = json.dumps(holder_record())
        if not self.create(LOCK_NAME, record):
            held = self.read_with_generation(LOCK_NAME)
            holder = read_holder(held[0]) if held else None
            if held is None or not _stale(holder, REMOTE_LOCK_STALE_SECONDS):
                raise busy(describe_holder(holder) if holder else "another writer")
            logging.warning("Removing the stale lock %s%s (%s)", self.prefix, LOCK_NAME, describe_holder(holder))
            self.delete(LOCK_NAME, generation=held[1])
            if not self.create(LOCK_NAME, record):
                raise busy("another writer")
        try:
            yield
        finally:
            self.delete(LOCK_NAME)


def _stale(holder: dict | None, seconds: float) -> bool:
    """A holder that is gone, or on another host and older than ``seconds``."""
    state = holder_state(holder)
    if state == HOLDER_UNKNOWN:
        return time.time() - float(holder.get("started", 0)) > seconds
    return state == HOLDER_GONE


def claims_of(directory: str):
    """The claim store of a serving (or production) directory."""
    directory = str(directory)
    if directory.startswith("gs://"):
        return _GcsClaims(posixpath.join(directory, CLAIMS_DIR))
    if directory.startswith("file://"):
        directory = directory[len("file://") :]
    elif "://" in directory:
        raise ValueError(f"{directory}: claims need a local folder or gs:// (an atomic create), not this scheme")
    return _LocalClaims(os.path.join(directory, CLAIMS_DIR))


# ---------------------------------------------------------------- the lock


@contextmanager
def locked(
    directory: str, busy: Callable[[str], Exception] = Busy, wait_seconds: float = 0.0, poll_seconds: float = 0.2
) -> Iterator[None]:
    """Holds the directory's lock while the block runs. When another writer
    holds it, waits up to ``wait_seconds``, then raises ``busy(holder)``."""
    claims = claims_of(directory)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            with claims.locked(Busy):
                yield
            return
        except Busy as held:
            if time.monotonic() >= deadline:
                raise busy(str(held)) from None
        time.sleep(poll_seconds)


# ---------------------------------------------------------------- version claims


def _version_name(version: int) -> str:
    return f"{version}{CLAIM_SUFFIX}"


def version_claims(directory: str) -> dict[int, dict]:
    """``{version: claim}`` of the pushes in progress (or left by dead writers)."""
    claims = claims_of(directory)
    found = {}
    for name in claims.names():
        number = name[: -len(CLAIM_SUFFIX)] if name.endswith(CLAIM_SUFFIX) else ""
        if number.isdigit():
            text = claims.read(name)
            record = read_holder(text) if text else None
            found[int(number)] = {**(json.loads(text) if record else {}), "holder": record}
    return dict(sorted(found.items()))


def is_live(claim: dict) -> bool:
    return not _stale(claim.get("holder"), REMOTE_CLAIM_STALE_SECONDS)


def remove_stale_claims(directory: str) -> list[int]:
    """Deletes the version claims whose writer died; call under the lock."""
    claims, removed = claims_of(directory), []
    for version, claim in version_claims(directory).items():
        if not is_live(claim):
            claims.delete(_version_name(version))
            logging.info(
                "Removed the claim on version %d of %s, left by %s",
                version,
                directory,
                describe_holder(claim.get("holder")),
            )
            removed.append(version)
    return removed


def claim_version(directory: str, first: int, model_uri: str, attempts: int = 1000) -> int:
    """Claims the lowest free version number from ``first`` up for
    ``model_uri``; a number another writer claimed first is skipped."""
    claims = claims_of(directory)
    text = json.dumps({**holder_record(), "model_uri": model_uri})
    for version in range(first, first + attempts):
        if claims.create(_version_name(version), text):
            return version
        logging.info("Version %d of %s is claimed by another writer; trying the next", version, directory)
    raise RuntimeError(f"{directory}: no free version number in {first}..{first + attempts - 1}")


def release_version(directory: str, version: int) -> None:
    claims_of(directory).delete(_version_name(version))
