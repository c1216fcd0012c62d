"""The worker's budget of document bytes in flight."""

import asyncio

from services.ingest.budget import ByteBudget


async def test_small_documents_share_the_budget_and_a_large_one_runs_alone():
    budget = ByteBudget(100)
    running: list[str] = []
    most = {"bytes": 0, "alone": True}

    async def job(name: str, size: int, release: asyncio.Event) -> None:
        async with budget.hold(size):
            running.append(name)
            most["bytes"] = max(most["bytes"], budget.in_use)
            if name == "large" and running != ["large"]:
                most["alone"] = False
            await release.wait()
            running.remove(name)

    release_small, release_large = asyncio.Event(), asyncio.Event()
    small = [asyncio.create_task(job(f"s{i}", 30, release_small)) for i in range(3)]
    await asyncio.sleep(0.01)
    assert sorted(running) == ["s0", "s1", "s2"] and budget.in_use == 90
    large = asyncio.create_task(job("large", 500, release_large))  # over the whole budget
    late = asyncio.create_task(job("late", 5, release_small))  # would fit, but asked after it
    await asyncio.sleep(0.01)
    assert "large" not in running and "late" not in running, "the large one waits, and so does the one behind it"
    release_small.set()
    await asyncio.sleep(0.01)
    assert running == ["large"] and budget.in_use == 100
    release_large.set()
    await asyncio.gather(*small, large, late)
    assert budget.in_use == 0 and most["bytes"] <= 100 and most["alone"]


async def test_a_cancelled_wait_gives_its_turn_away():
    budget = ByteBudget(10)
    hold = budget.hold(10)
    await hold.__aenter__()
    waiting = asyncio.create_task(budget.hold(10).__aenter__())
    await asyncio.sleep(0.01)
    waiting.cancel()
    await asyncio.sleep(0.01)
    await hold.__aexit__(None, None, None)

    async def quick():
        async with budget.hold(4):
            return budget.in_use

    assert await asyncio.wait_for(quick(), 1) == 4
    assert budget.in_use == 0
