"""tests/proxy/test_upstream_auth.py with the registry's storage on S3 (see conftest.py)."""
from tests.proxy.test_upstream_auth import *  # noqa: F401,F403
