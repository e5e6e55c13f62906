"""Async resources: things released with ``await close()``, and closed by ``async with``.

Sockets, streams and async files share this one shape, so it lives here once.

Read next: ``kernel/asyncsocket.py``.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["AsyncResource"]


class AsyncResource:
    """``async with resource:`` closes it on the way out, whatever happened inside."""

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
