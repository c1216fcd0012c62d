"""The shards of a tiered dense index: which shards make up the set (the manifest on disk), the
view searches use, and when a shard that left the set may be closed.

Every change of the set writes the manifest first (one atomic file replace: the durable switch)
and then publishes a new view (one reference change). A search takes the current view and
counts itself on it; a shard that left the set is closed and deleted once no search holds a view
that has it. The caller serialises the changes (the index's write lock)."""

import os
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from services.retrieve.backends.edge_layout import (
    BLANK,
    BUILDS,
    MANIFEST,
    SHARDS,
    Manifest,
    SealedShard,
    ShardConfig,
    copy_flushed_shard,
    open_shard,
    read_manifest,
    write_manifest,
)
from services.retrieve.backends.qdrant_edge import QdrantEdgeIndex

LEGACY = "s000000"  # the single shard of an index made before tiers


@dataclass(frozen=True)
class View:
    """The shards searches use; replaced whole, never changed."""

    number: int
    hot: QdrantEdgeIndex
    sealed: tuple[QdrantEdgeIndex, ...]

    @property
    def shards(self) -> tuple[QdrantEdgeIndex, ...]:
        return (self.hot, *self.sealed)


def shard_name(number: int) -> str:
    return f"s{number:06d}"


class ShardSet:
    def __init__(self, root: Path, config: ShardConfig) -> None:
        self.root, self.config = Path(root), config
        self.manifest: Manifest | None = None
        self._shards: dict[str, QdrantEdgeIndex] = {}
        self._next = 1
        self._gate = threading.Lock()  # the view and its readers
        self._view: View | None = None
        self._readers: Counter[int] = Counter()
        self._retired: list[tuple[int, list[QdrantEdgeIndex]]] = []  # (last view that has them, shards)

    # -- opening and closing -------------------------------------------------------------------

    def open(self) -> None:
        """Open the shards as they are: nothing is built here."""
        self.root.mkdir(parents=True, exist_ok=True)
        manifest = read_manifest(self.root)
        if manifest is None:
            manifest = self._first_manifest()
        self._remove_leftovers(manifest)
        self._make_blank()
        self._next = manifest.next_number
        for name in manifest.names:
            shard = self._shard(name)
            if not shard.path.exists():
                if name != manifest.hot:
                    raise FileNotFoundError(f"dense index: shard {shard.path} named in {MANIFEST} is missing")
                copy_flushed_shard(self.root / BLANK, shard.path)  # named before its folder was made
            shard.open()
            self._shards[name] = shard
        self.manifest = manifest
        self._view = View(1, self._shards[manifest.hot], tuple(self._shards[s.name] for s in manifest.sealed))

    def _first_manifest(self) -> Manifest:
        """A new index; or one made as a single shard in this folder, which becomes its first
        sealed shard (moved entry by entry: a crash midway is finished at the next open)."""
        legacy = self.root / SHARDS / LEGACY
        ours = (SHARDS, BUILDS, BLANK, BLANK + ".tmp")
        entries = [e for e in self.root.iterdir() if e.name not in ours and not e.name.startswith(MANIFEST)]
        sealed = ()
        if entries or legacy.exists():
            legacy.mkdir(parents=True, exist_ok=True)
            for entry in entries:
                os.replace(entry, legacy / entry.name)
            sealed = (SealedShard(LEGACY, built=False),)
        manifest = Manifest(shard_name(1), sealed, 2)
        write_manifest(self.root, manifest)
        return manifest

    def _remove_leftovers(self, manifest: Manifest) -> None:
        """Shards no manifest names (a build installed or a seal begun when a crash came) and
        every build folder (interrupted builds are redone)."""
        shards = self.root / SHARDS
        if shards.exists():
            for folder in shards.iterdir():
                if folder.name not in manifest.names:
                    shutil.rmtree(folder)
        shutil.rmtree(self.root / BUILDS, ignore_errors=True)
        shutil.rmtree(self.root / (BLANK + ".tmp"), ignore_errors=True)

    def _make_blank(self) -> None:
        if (self.root / BLANK).exists():
            return
        making = self.root / (BLANK + ".tmp")
        shard = open_shard(making, self.config)
        shard.flush()
        shard.close()
        os.replace(making, self.root / BLANK)

    def close(self) -> None:
        self.destroy_retired(force=True)
        for shard in self._shards.values():
            shard.close()
        self._shards.clear()
        self._view = None

    # -- shards that are not in the set yet ------------------------------------------------------

    def _shard(self, name: str) -> QdrantEdgeIndex:
        return QdrantEdgeIndex(self.root / SHARDS / name, self.config.dimension, config=self.config)

    def allocate(self) -> int:
        """A number for a new shard or job folder; never reused."""
        number, self._next = self._next, self._next + 1
        return number

    def new_hot(self) -> QdrantEdgeIndex:
        """An empty shard, copied from the blank one: files copied without the GIL, then a short load."""
        shard = self._shard(shard_name(self.allocate()))
        copy_flushed_shard(self.root / BLANK, shard.path)
        shard.open()
        return shard

    def adopt(self, folder: Path) -> QdrantEdgeIndex:
        """A built shard moved under shards/ and opened; a leftover until `replace` names it.
        Opening holds the GIL while Qdrant loads the segments: the one stall a build costs."""
        shard = self._shard(shard_name(self.allocate()))
        os.replace(folder, shard.path)
        try:
            shard.open()
        except Exception:
            shutil.rmtree(shard.path, ignore_errors=True)
            raise
        return shard

    def discard(self, shard: QdrantEdgeIndex) -> None:
        """A shard opened by new_hot or adopt that did not join the set."""
        if shard.path.name not in self.manifest.names:
            shard.destroy()

    # -- changes of the set (under the index's write lock) ----------------------------------------

    @property
    def view(self) -> View:
        return self._view

    def shard(self, name: str) -> QdrantEdgeIndex:
        return self._shards[name]

    def seal(self, hot: QdrantEdgeIndex, built: bool) -> str:
        """`hot` takes the upserts; the hot shard before it joins the sealed ones."""
        view, old = self._view, self._view.hot.path.name
        sealed = (*self.manifest.sealed, SealedShard(old, built))
        self._commit(Manifest(hot.path.name, sealed, self._next), added=[hot])
        self._publish(View(view.number + 1, hot, (*view.sealed, view.hot)))
        return old

    def replace(self, inputs: tuple[str, ...], built: QdrantEdgeIndex) -> None:
        """The built shard takes the place of the shards it was built from."""
        sealed, placed = [], False
        for entry in self.manifest.sealed:
            if entry.name not in inputs:
                sealed.append(entry)
            elif not placed:
                sealed.append(SealedShard(built.path.name, built=True))
                placed = True
        self._commit(Manifest(self.manifest.hot, tuple(sealed), self._next), added=[built])
        self._leave(inputs, sealed)

    def drop(self, names: tuple[str, ...]) -> None:
        sealed = [entry for entry in self.manifest.sealed if entry.name not in names]
        self._commit(Manifest(self.manifest.hot, tuple(sealed), self._next), added=[])
        self._leave(names, sealed)

    def _commit(self, manifest: Manifest, added: list[QdrantEdgeIndex]) -> None:
        write_manifest(self.root, manifest)
        self.manifest = manifest
        for shard in added:
            self._shards[shard.path.name] = shard

    def _leave(self, names: tuple[str, ...], sealed: list[SealedShard]) -> None:
        leaving = [self._shards.pop(name) for name in names]
        view = self._view
        self._publish(View(view.number + 1, view.hot, tuple(self._shards[s.name] for s in sealed)), leaving)

    def _publish(self, view: View, leaving: list[QdrantEdgeIndex] = ()) -> None:
        with self._gate:
            if leaving:
                self._retired.append((self._view.number, list(leaving)))
            self._view = view

    # -- reading ---------------------------------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[View]:
        """The current view, whose shards stay open until the caller is done with it."""
        with self._gate:
            view = self._view
            self._readers[view.number] += 1
        try:
            yield view
        finally:
            with self._gate:
                self._readers[view.number] -= 1
                if not self._readers[view.number]:
                    del self._readers[view.number]

    def destroy_retired(self, force: bool = False) -> None:
        """Close and delete the shards that left the set, once no reader holds a view that has them."""
        with self._gate:
            oldest = min(self._readers, default=self._view.number + 1) if not force else float("inf")
            ready = [shards for last, shards in self._retired if last < oldest]
            self._retired = [(last, shards) for last, shards in self._retired if last >= oldest]
        for shards in ready:
            for shard in shards:
                shard.destroy()
