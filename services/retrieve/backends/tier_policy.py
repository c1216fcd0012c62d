"""When the tiered dense index seals its hot shard and which sealed shards it merges: pure functions."""

import math


def seal_due(hot_points: int, hot_age: float | None, max_points: int, max_seconds: float) -> bool:
    """The hot shard is full, or its oldest point has waited long enough to enter a graph."""
    if hot_points == 0:
        return False
    return hot_points >= max_points or (hot_age is not None and hot_age >= max_seconds)


def level(points: int, floor: int, factor: int) -> int:
    """Size class of a shard: 0 up to `floor` x `factor` points, then one more for every `factor`x."""
    if points < floor * factor:
        return 0
    return int(math.log(points / floor, factor) + 1e-9)


def merge_plan(sizes: dict[str, int], floor: int, factor: int, max_points: int, graph_points: int) -> tuple[str, ...]:
    """Built shards to merge next. Shards too small for a graph (each searched by brute force)
    merge as soon as there are two. Shards with a graph merge as Lucene's tiered merging does:
    once a size class holds `factor` of them, its `factor` smallest become one shard of the next
    class, the lowest full class first. So a set of n points keeps at most one shard without a
    graph (besides the hot one) and fewer than `factor` per class over about log_factor(n / floor)
    classes, and every point is rebuilt about that many times over its life. No merge makes a shard
    of more than `max_points` (the larger the shard, the longer the process stalls while Qdrant
    loads it): a full class merges as many of its smallest as fit, at least two, and shards that
    large are left alone."""
    small = sorted((points, name) for name, points in sizes.items() if points < graph_points)
    if len(small) >= 2:
        return tuple(name for _, name in small[: max(2, int(max_points // max(graph_points, 1)))])
    classes: dict[int, list[tuple[int, str]]] = {}
    for name, points in sizes.items():
        if graph_points <= points < max_points:
            classes.setdefault(level(points, max(floor, graph_points), factor), []).append((points, name))
    for _, members in sorted(classes.items()):
        if len(members) < factor:
            continue
        chosen, total = [], 0
        for points, name in sorted(members):
            if len(chosen) == factor or total + points > max_points:
                break
            chosen.append(name)
            total += points
        if len(chosen) >= 2:
            return tuple(chosen)
    return ()
