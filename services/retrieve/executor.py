"""Carries out a plan's document writes on both engines, in the order that keeps every document
visible at every instant a search can observe: first the stored chunks take new fields and the
activated version becomes live, then new chunks are written, then older versions are deleted,
then both engines commit. Every step is idempotent, so a batch that failed half-way is simply
carried out again."""

from services.retrieve.plan import DocWrite


def execute(writes: list[DocWrite], dense, lexical) -> None:
    for write in writes:
        if write.rewrites:
            fields = write.fields if write.rewrite_fields else None
            for engine in (dense, lexical):
                engine.rewrite(*write.key, fields, write.live_version)
    upserts = [chunk for write in writes for chunk in write.upserts]
    if upserts:
        dense.upsert(upserts)
        lexical.upsert(upserts)
    for write in writes:
        if write.retire_below:
            for engine in (dense, lexical):
                engine.retire(*write.key, write.retire_below)
    lexical.commit()
    dense.commit()
