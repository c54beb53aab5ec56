"""arq: ``ArqRedis.enqueue_job``; worker via ``arq module.WorkerSettings`` (one process, max_jobs=10)."""

from __future__ import annotations

from typing import Any

from arq.connections import RedisSettings

from bench.peers.common import awork, redis_url


async def job(ctx: dict[str, Any], t: float) -> None:
    await awork(t, ctx["redis"])


class WorkerSettings:
    functions = [job]
    redis_settings = RedisSettings.from_dsn(redis_url())


class Producer:
    pool: Any = None

    async def one(self, t: float) -> None:
        if self.pool is None:
            from arq import create_pool

            self.pool = await create_pool(RedisSettings.from_dsn(redis_url()))
        await self.pool.enqueue_job("job", t)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()


def producer() -> Producer:
    return Producer()
