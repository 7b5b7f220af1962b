"""tests/api/test_discovery.py with the registry's storage on S3 (see conftest.py)."""
from tests.api.test_discovery import *  # noqa: F401,F403
