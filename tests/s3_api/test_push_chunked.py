"""tests/api/test_push_chunked.py with the registry's storage on S3 (see conftest.py)."""
from tests.api.test_push_chunked import *  # noqa: F401,F403
