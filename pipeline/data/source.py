"""Where a run's shards come from: a glob the user gives, or the embedded
synthetic data set, generated once into the work directory.

ImportExampleGen wants a base directory and a file pattern inside it, so a
glob such as ``data/*.tfrec`` or ``gs://bucket/flowers/*.tfrec`` is split at
its first component with a wildcard or a TFX placeholder: for
``gs://bucket/flowers/span-{SPAN}/*.tfrec`` the base is ``gs://bucket/flowers``
and ExampleGen's driver resolves ``span-{SPAN}/*.tfrec`` to the latest span.
"""

from __future__ import annotations

import errno
import glob
import re
import shutil
from pathlib import Path
from typing import TextIO

from pipeline.config import Config
from pipeline.data.location import DataLocation
from pipeline.data.shards import DataError
from pipeline.data.synth import write_synthetic_shards

# "{" starts a TFX span, version or date placeholder ({SPAN}, {YYYY}, ...):
# the base directory ends before it, as before a wildcard.
_WILDCARDS = set("*?[{")
_PLACEHOLDER = re.compile(r"\{[^}]*\}")
_COMPLETE_MARKER = ".complete"
# A data source ending in one of these is one shard file, not a folder.
_SHARD_SUFFIXES = (".tfrec", ".tfrecord", ".tfrecords", ".tfrec.gz")


def split_glob(glob: str) -> DataLocation:
    """``'a/b/*.tfrec'`` -> base ``'a/b'``, pattern ``'*.tfrec'``.

    A directory with no pattern means every ``*.tfrec`` file in it; a single
    shard file (a local file, or a name ending in a TFRecord suffix) is its
    folder and its own name as the pattern.
    """
    glob = glob.rstrip("/")
    scheme, sep, rest = glob.partition("://")
    if not sep:
        scheme, rest = "", glob
    parts = rest.split("/")
    wild = next((i for i, part in enumerate(parts) if _WILDCARDS & set(part)), None)
    if wild is None and _is_single_file(glob, parts[-1]):
        base, pattern = "/".join(parts[:-1]), parts[-1]
    elif wild is None:
        base, pattern = rest, "*.tfrec"
    else:
        base, pattern = "/".join(parts[:wild]), "/".join(parts[wild:])
    if scheme:
        base = f"{scheme}://{base}"
    elif not base.startswith("/"):
        base = str(Path(base or ".").absolute())
    return DataLocation(base=base, pattern=pattern)


def _is_single_file(glob: str, last_part: str) -> bool:
    if "://" in glob:
        return last_part.endswith(_SHARD_SUFFIXES)
    return Path(glob).is_file()


def check_local_data(location: DataLocation, config: Config) -> None:
    """Fails early, naming the path, when local shards are missing or unreadable."""
    if "://" in location.base:
        return  # checked by ImportExampleGen with the cloud credentials it runs with
    base = Path(location.base)
    try:
        base.stat()
    except OSError as error:
        if error.errno == errno.ENOENT:
            raise DataError(f"{base}: data directory does not exist") from None
        raise DataError(f"{base}: cannot read the data directory ({error.strerror})") from None
    if not base.is_dir():
        raise DataError(f"{base}: not a directory")
    patterns = [location.pattern]
    if config.data.train_pattern and config.data.eval_pattern:
        patterns = [config.data.train_pattern, config.data.eval_pattern]
    for pattern in patterns:
        try:
            # Any span: the driver picks the latest among those that match. A
            # local path: Python's glob, so that a wrong path is named before
            # TensorFlow loads.
            matches = glob.glob(_PLACEHOLDER.sub("*", str(base / pattern)))
        except OSError as error:
            raise DataError(f"{base / pattern}: cannot list the shards ({error.strerror or error})") from None
        if not matches:
            raise DataError(f"{base / pattern}: no files match this pattern")
        for match in matches:
            try:
                size = Path(match).stat().st_size
            except OSError as error:  # a symlink loop, a dangling link, no permission
                raise DataError(f"{match}: cannot read this shard ({error.strerror})") from None
            if size == 0:
                raise DataError(f"{match}: shard file is empty")


def synthetic_data(config: Config, out: TextIO) -> DataLocation:
    """The embedded default data set, generated once per seed and size."""
    data = config.data
    name = f"synthetic-seed{data.synthetic_seed}-{data.synthetic_images}x{data.synthetic_shards}"
    target = config.work_dir / "data" / name
    if not (target / _COMPLETE_MARKER).exists():
        out.write(f"Generating the synthetic data set ({data.synthetic_images} images) in {target}\n")
        out.flush()
        partial = target.with_name(name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        write_synthetic_shards(
            str(partial), images=data.synthetic_images, shards=data.synthetic_shards, seed=data.synthetic_seed
        )
        (partial / _COMPLETE_MARKER).touch()
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return DataLocation(base=str(target), pattern="*.tfrec")


def prepare(config: Config, out: TextIO) -> DataLocation:
    """The shards this run reads, checked (local) or generated (default)."""
    if not config.data.source:
        return synthetic_data(config, out)
    location = split_glob(config.data.source)
    check_local_data(location, config)
    return location
