"""tests/api/test_pull.py with the registry's storage on S3 (see conftest.py)."""
from tests.api.test_pull import *  # noqa: F401,F403
