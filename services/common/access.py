"""Who may read a document: the one rule the gateway (reads, listings) and ingest (an upload
replacing a document) both apply."""

from collections.abc import Iterable

PUBLIC = "public"


def may_read(principals: Iterable[str], acl: Iterable[str]) -> bool:
    acl = set(acl)
    return PUBLIC in acl or not acl.isdisjoint(principals)
