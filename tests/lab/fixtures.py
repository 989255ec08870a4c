"""pytest fixtures for the lab: `from lab.fixtures import *` in tests/conftest.py
(or `pytest_plugins = ["lab.fixtures"]`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest_asyncio

from blockwatch.lab import Lab

__all__ = ["BIG_LAB_SIZE", "big_lab", "big_lab_names", "lab", "lab_factory"]

BIG_LAB_SIZE = 1000


def big_lab_names(n: int = BIG_LAB_SIZE) -> list[str]:
    return [f"site{i:04d}.test" for i in range(n)]


@pytest_asyncio.fixture
async def lab() -> AsyncIterator[Lab]:
    """A started, empty Lab; closed (every server and task) after the test."""
    async with Lab() as lab_:
        yield lab_


@pytest_asyncio.fixture
async def lab_factory() -> AsyncIterator[Callable[..., Awaitable[Lab]]]:
    """`await lab_factory(latency=0.05)`: started Labs with options, all closed afterwards."""
    labs: list[Lab] = []

    async def make(**kwargs: Any) -> Lab:
        lab_ = Lab(**kwargs)
        labs.append(lab_)
        return await lab_.start()

    yield make
    for lab_ in labs:
        await lab_.close()


@pytest_asyncio.fixture
async def big_lab() -> AsyncIterator[Lab]:
    """A Lab with 1,000 served sites site0000.test ... site0999.test (50 per address).

    Every site answers in both resolvers; `big_lab.big_names` lists the names in order.
    """
    async with Lab() as lab_:
        names = big_lab_names()
        await lab_.add_sites(names)
        lab_.big_names = names  # type: ignore[attr-defined]
        yield lab_
