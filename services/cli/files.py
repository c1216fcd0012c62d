"""Which files `ragmesh ingest` uploads from the paths it is given, and under which doc ids.

It stays inside the given folders: a symbolic link is followed only when its target is inside one
of them (or with `follow_symlinks`); dotfiles and dot-folders are left out unless asked for, and
version-control folders unless asked for separately; only regular files are read (a FIFO would
block). A folder's files get ids prefixed by the folder's name (`docs/README.md`), so two folders
each holding a README.md do not overwrite each other; ids that would still collide are refused.
"""

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

VCS_FOLDERS = frozenset({".git", ".hg", ".svn", ".bzr", "_darcs", "CVS"})


class PathProblem(ValueError):
    pass


@dataclass(frozen=True)
class Found:
    path: Path  # the file to read (a link's target, resolved)
    doc_id: str
    source_name: str


@dataclass(frozen=True)
class Options:
    follow_symlinks: bool = False
    include_hidden: bool = False
    include_vcs: bool = False


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _skipped_name(name: str, options: Options) -> str:
    """Why a file or folder of this name is left out, or ""."""
    if name in VCS_FOLDERS and not options.include_vcs:
        return "version-control folder (--include-vcs)"
    if name.startswith(".") and name not in VCS_FOLDERS and not options.include_hidden:
        return "hidden (--include-hidden)"
    return ""


def collect(paths: list[Path], options: Options) -> tuple[list[Found], list[tuple[str, str]]]:
    """(files to upload, (path, why) of everything left out). Raises PathProblem for a path that
    does not exist and for doc ids that collide."""
    roots = []
    for path in paths:
        if not os.path.lexists(path):
            raise PathProblem(f"{path} does not exist")
        roots.append(path.resolve())
    found: list[Found] = []
    skipped: list[tuple[str, str]] = []
    for given, root in zip(paths, roots, strict=True):
        if root.is_file():  # named on the command line: the user asked for it, dotfile or not
            found.append(Found(root, given.name, given.name))
        elif root.is_dir():
            prefix = root.name or "root"
            for path, relative, why in _walk(root, roots, options):
                if why:
                    skipped.append((str(path), why))
                else:
                    found.append(Found(path, f"{prefix}/{relative}", relative.rsplit("/", 1)[-1]))
        else:
            skipped.append((str(given), "not a regular file"))
    seen: dict[str, Path] = {}
    for item in found:
        if item.doc_id in seen:
            raise PathProblem(f"{seen[item.doc_id]} and {item.path} would both be doc_id {item.doc_id!r}")
        seen[item.doc_id] = item.path
    return found, skipped


def _walk(root: Path, roots: list[Path], options: Options) -> Iterator[tuple[Path, str, str]]:
    """(path, id relative to root, why it is left out or "") of everything under root, in name order."""
    visited: set[tuple[int, int]] = set()

    def walk(folder: Path, relative: str) -> Iterator[tuple[Path, str, str]]:
        status = folder.stat()
        if (status.st_dev, status.st_ino) in visited:  # a link back up: a loop
            return
        visited.add((status.st_dev, status.st_ino))
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            path, name = Path(entry.path), f"{relative}{entry.name}"
            why = _skipped_name(entry.name, options)
            if why:
                yield path, name, why
                continue
            target = path
            if entry.is_symlink():
                target = path.resolve()
                if not options.follow_symlinks and not _inside(target, roots):
                    yield path, name, "link to outside the given folders (--follow-symlinks)"
                    continue
                if not target.exists():
                    yield path, name, "broken link"
                    continue
            mode = target.stat().st_mode
            if stat.S_ISDIR(mode):
                if entry.is_symlink() and not options.follow_symlinks:
                    yield path, name, "link to a folder (--follow-symlinks)"
                    continue
                yield from walk(target, name + "/")
            elif stat.S_ISREG(mode):
                yield target, name, ""
            else:
                yield path, name, "not a regular file"

    yield from walk(root, "")


def open_file(path: Path) -> BinaryIO:
    """The file, for reading as it is sent. The final component is opened without following links:
    a file swapped for a link after it was checked is refused."""
    return os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb")
