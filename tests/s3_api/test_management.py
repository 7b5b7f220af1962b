"""tests/api/test_management.py with the registry's storage on S3 (see conftest.py)."""
from tests.api.test_management import *  # noqa: F401,F403
