"""A budget of document bytes in flight in one worker: many small documents at once, few large ones."""

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class ByteBudget:
    """Jobs take their bytes in the order they asked, so a large document is not starved by a
    stream of small ones that would each fit."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.in_use = 0
        self._waiting: deque[object] = deque()
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        """Wait until `size` bytes fit, hold them while the block runs. A document larger than the
        whole budget waits until nothing else is held, then runs alone."""
        size = min(max(size, 0), self.capacity)
        turn = object()
        async with self._changed:
            self._waiting.append(turn)
            try:
                await self._changed.wait_for(lambda: self._waiting[0] is turn and self.in_use + size <= self.capacity)
            finally:
                self._waiting.remove(turn)
                self._changed.notify_all()
            self.in_use += size
        try:
            yield
        finally:
            async with self._changed:
                self.in_use -= size
                self._changed.notify_all()
