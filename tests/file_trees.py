"""What a folder holds, to check that a command left it as it was."""

import hashlib
from pathlib import Path


def tree_hashes(folder: Path) -> dict[str, str]:
    """Each file under ``folder`` (its path relative to the folder) and the SHA-256 of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
