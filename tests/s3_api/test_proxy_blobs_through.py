"""tests/proxy/test_blobs_through.py with the registry's storage on S3 (see conftest.py)."""
from tests.proxy.test_blobs_through import *  # noqa: F401,F403
