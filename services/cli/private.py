"""Local state readable by its owner only: folders 0700, files 0600 from their first byte (made
under a temporary name with those permissions, then moved into place: never written, then chmod'ed)."""

import contextlib
import os
from pathlib import Path

FOLDER_MODE, FILE_MODE = 0o700, 0o600


def private_folder(path: Path) -> Path:
    """Make `path` (and missing parents) owner-only; an existing folder is narrowed to 0700."""
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != FOLDER_MODE:
        path.chmod(FOLDER_MODE)
    return path


def _written(path: Path, text: str) -> Path:
    """A new owner-only file beside `path` holding `text`, flushed to disk."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    return temporary


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step: a reader sees the old file or the new one, whole."""
    os.replace(_written(path, text), path)


def create_private(path: Path, text: str) -> bool:
    """Create `path` holding `text` unless it exists (then leave it); whether this call made it.
    Two processes racing both see one file, written whole by one of them."""
    temporary = _written(path, text)
    try:
        os.link(temporary, path)
        return True
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
