def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "needs_redis_worker: runs `jobqueue worker` against a local redis-server; skips until jobqueue_redis exists",
    )
