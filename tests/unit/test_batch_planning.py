"""Batch planning in the embed service: least padding, within the budget, no text waits forever."""

from types import SimpleNamespace

from services.embed.batcher import _Item, plan_batch


def items(*lengths: int, waited: float = 0.0) -> list[_Item]:
    made = []
    for n, length in enumerate(lengths):
        item = _Item(SimpleNamespace(ids=[0] * length), future=None)
        item.enqueued = -waited - (len(lengths) - n) * 1e-3  # the first listed waited longest
        made.append(item)
    return made


def lengths(batch: list[_Item]) -> list[int]:
    return sorted((i.length for i in batch), reverse=True)


def test_texts_of_one_length_go_together_instead_of_padded_to_a_longer_one():
    queue = items(200, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100)
    batch = plan_batch(queue, 1000, now=0.0, patience_s=10.0)
    assert lengths(batch) == [100] * 10


def test_a_batch_never_exceeds_the_padded_budget_and_is_full_when_it_can_be():
    queue = items(*range(40, 240, 7))
    batch = plan_batch(queue, 1024, now=0.0, patience_s=10.0)
    width = max(i.length for i in batch)
    assert width * len(batch) <= 1024
    assert len(batch) == 1024 // width


def test_a_text_that_waited_past_the_patience_goes_now():
    queue = items(230, *[100] * 30, waited=1.0)
    assert lengths(plan_batch(queue, 1000, now=0.0, patience_s=10.0)) == [100] * 10
    batch = plan_batch(queue, 1000, now=0.0, patience_s=0.5)
    assert 230 in lengths(batch) and len(batch) == 1000 // 230


def test_a_queue_that_fits_one_batch_goes_whole_and_a_longer_text_goes_alone():
    assert lengths(plan_batch(items(90, 30, 10), 1024, now=0.0, patience_s=10.0)) == [90, 30, 10]
    assert lengths(plan_batch(items(600), 512, now=0.0, patience_s=0.0)) == [600]


def test_with_no_patience_the_oldest_text_is_always_in_the_batch():
    queue = items(50, *[200] * 10)  # the short text waited longest
    batch = plan_batch(queue, 1000, now=0.0, patience_s=0.0)
    assert any(i is queue[0] for i in batch)
