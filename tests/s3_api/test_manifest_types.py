"""tests/api/test_manifest_types.py with the registry's storage on S3 (see conftest.py)."""
from tests.api.test_manifest_types import *  # noqa: F401,F403
