from tests.conformance.conftest import harness, jobs, pytest_generate_tests  # noqa: F401  (fixtures and parametrisation)
