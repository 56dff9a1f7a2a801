"""Where a run's shards come from: a glob the user gives, or the embedded
synthetic data set, generated once into the work directory.

ImportExampleGen wants a base directory and a file pattern inside it, so a
glob such as ``data/*.tfrec`` or ``gs://bucket/flowers/*.tfrec`` is split at
its first component with a wildcard.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TextIO

import tensorflow as tf

from pipeline.config import Config
from pipeline.dag import DataLocation
from pipeline.data.shards import DataError
from pipeline.data.synth import write_synthetic_shards

_WILDCARDS = set("*?[")
_COMPLETE_MARKER = ".complete"


def split_glob(glob: str) -> DataLocation:
    """``'a/b/*.tfrec'`` -> base ``'a/b'``, pattern ``'*.tfrec'``.

    A directory with no pattern means every ``*.tfrec`` file in it.
    """
    glob = glob.rstrip("/")
    scheme, sep, rest = glob.partition("://")
    if not sep:
        scheme, rest = "", glob
    parts = rest.split("/")
    wild = next((i for i, part in enumerate(parts) if _WILDCARDS & set(part)), None)
    if wild is None:
        base, pattern = rest, "*.tfrec"
    else:
        base, pattern = "/".join(parts[:wild]), "/".join(parts[wild:])
    if scheme:
        base = f"{scheme}://{base}"
    elif not base.startswith("/"):
        base = str(Path(base or ".").absolute())
    return DataLocation(base=base, pattern=pattern)


def check_local_data(location: DataLocation, config: Config) -> None:
    """Fails early, naming the path, when local shards are missing."""
    if "://" in location.base:
        return  # checked by ImportExampleGen with the cloud credentials it runs with
    base = Path(location.base)
    if not base.is_dir():
        raise DataError(f"{base}: data directory does not exist")
    patterns = [location.pattern]
    if config.data.train_pattern and config.data.eval_pattern:
        patterns = [config.data.train_pattern, config.data.eval_pattern]
    for pattern in patterns:
        matches = tf.io.gfile.glob(str(base / pattern))
        if not matches:
            raise DataError(f"{base / pattern}: no files match this pattern")
        empty = [m for m in matches if Path(m).stat().st_size == 0]
        if empty:
            raise DataError(f"{empty[0]}: shard file is empty")


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
