"""The environment that scripts/bootstrap.sh makes carries its packages'
bytecode, valid for their sources: where Python may not write its caches
(PYTHONDONTWRITEBYTECODE=1, as on CI machines), a process would otherwise
compile TensorFlow, TFX and Beam from source each time it imports them
(19 s of CPU to import what a run needs, against 6 s)."""

import importlib.util
import struct
from pathlib import Path

import pytest

# The packages whose import dominated every process's start.
HEAVY = ["tensorflow", "tfx", "apache_beam", "tensorflow_transform", "tensorflow_model_analysis"]


def bytecode_matches_source(source: Path) -> bool:
    """Whether the cached bytecode of ``source`` exists and Python would use it:
    a timestamp-based .pyc records the source's mtime and size (PEP 552)."""
    cached = Path(importlib.util.cache_from_source(str(source)))
    if not cached.is_file():
        return False
    header = cached.read_bytes()[:16]
    flags, mtime, size = struct.unpack("<III", header[4:16])
    if header[:4] != importlib.util.MAGIC_NUMBER:
        return False
    if flags & 1:  # hash-based: checked or not, uv and compileall write these only when asked
        return True
    stat = source.stat()
    return mtime == int(stat.st_mtime) & 0xFFFFFFFF and size == stat.st_size & 0xFFFFFFFF


@pytest.mark.parametrize("package", HEAVY)
def test_heavy_packages_carry_bytecode_for_their_sources(package):
    source = Path(importlib.util.find_spec(package).origin)
    assert bytecode_matches_source(source), (
        f"{source}: no valid bytecode beside it; scripts/bootstrap.sh compiles the environment's "
        "(remove .venv/.bytecode-compiled-for and run it again)"
    )


def test_missing_or_stale_bytecode_is_told_apart_from_valid(tmp_path):
    import py_compile

    source = tmp_path / "module.py"
    source.write_text("x = 1\n")
    assert not bytecode_matches_source(source)
    py_compile.compile(str(source), invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
    assert bytecode_matches_source(source)
    source.write_text("x = 100\n")  # another size: Python would compile it again
    assert not bytecode_matches_source(source)
