"""tests/proxy/test_mirror_listings.py with the registry's storage on S3 (see conftest.py)."""
from tests.proxy.test_mirror_listings import *  # noqa: F401,F403
