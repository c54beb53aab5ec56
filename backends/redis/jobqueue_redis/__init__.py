"""Redis backend for jobqueue: jobs in Redis (or Valkey, or a Redis Cluster), run by ``jobqueue worker``.

Install with ``pip install 'jobqueue[redis]'``; select with ``JOBQUEUE_BACKEND=redis``.
"""

from jobqueue_redis.backend import RedisBackend
from jobqueue_redis.settings import RedisSettings
from jobqueue_redis.worker import Worker

__all__ = ["RedisBackend", "RedisSettings", "Worker"]
