"""tests/proxy/test_mirror_sync.py with the registry's storage on S3 (see conftest.py)."""
from tests.proxy.test_mirror_sync import *  # noqa: F401,F403
