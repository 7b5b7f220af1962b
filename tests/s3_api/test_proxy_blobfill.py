"""tests/proxy/test_blobfill.py with the registry's storage on S3 (see conftest.py)."""
from tests.proxy.test_blobfill import *  # noqa: F401,F403
