"""When the tiered dense index seals and what it merges."""

import pytest

from services.retrieve.backends.tier_policy import level, merge_plan, seal_due


def test_a_hot_shard_is_sealed_when_full_or_old_and_never_when_empty():
    assert seal_due(5000, 1.0, 5000, 300) is True
    assert seal_due(4999, 1.0, 5000, 300) is False
    assert seal_due(1, 300.0, 5000, 300) is True
    assert seal_due(1, 299.9, 5000, 300) is False
    assert seal_due(0, 10_000.0, 5000, 300) is False
    assert seal_due(3, None, 5000, 300) is False


@pytest.mark.parametrize(
    ("points", "expected"),
    [(0, 0), (19_999, 0), (20_000, 1), (79_999, 1), (80_000, 2), (320_000, 3)],
)
def test_size_classes_grow_by_the_merge_factor(points, expected):
    assert level(points, 5000, 4) == expected


def test_nothing_merges_while_every_class_holds_fewer_than_the_factor():
    sizes = {"a": 5000, "b": 5000, "c": 4000, "d": 30_000, "e": 40_000, "f": 60_000}
    assert merge_plan(sizes, 5000, 4, 200_000, 1) == ()


def test_the_smallest_of_the_lowest_full_class_merge():
    sizes = {"a": 5000, "b": 4000, "c": 3000, "d": 100, "e": 6000, "big1": 30_000, "big2": 30_000}
    sizes |= {"big3": 30_000, "big4": 30_000}
    assert merge_plan(sizes, 5000, 4, 200_000, 1) == ("d", "c", "b", "a")
    for merged in ("d", "c", "b", "a"):
        del sizes[merged]
    assert merge_plan(sizes, 5000, 4, 200_000, 1) == ("big1", "big2", "big3", "big4")


def test_no_merge_makes_a_shard_past_the_maximum():
    sizes = {"a": 60_000, "b": 60_000, "c": 70_000, "d": 75_000, "cap": 200_000, "cap2": 250_000}
    assert merge_plan(sizes, 5000, 4, 200_000, 1) == ("a", "b", "c")  # 190k; the fourth would pass 200k
    assert merge_plan({"a": 150_000, "b": 160_000, "c": 170_000, "d": 180_000}, 5000, 4, 200_000, 1) == ()


def test_shards_too_small_for_a_graph_merge_as_soon_as_there_are_two():
    sizes = {"graph": 30_000, "small": 6000, "hot-sealed": 5000}
    assert merge_plan(sizes, 5000, 4, 200_000, 6666) == ("hot-sealed", "small")
    assert merge_plan({"graph": 30_000, "small": 6000}, 5000, 4, 200_000, 6666) == ()


def test_classes_of_shards_with_a_graph_start_at_the_graph_size():
    sizes = {"a": 7000, "b": 8000, "c": 9000, "d": 27_000}
    assert merge_plan(sizes, 5000, 4, 200_000, 6666) == ()  # 27k is past 4 x 6,666: a class above
    assert merge_plan(sizes | {"e": 10_000}, 5000, 4, 200_000, 6666) == ("a", "b", "c", "e")
