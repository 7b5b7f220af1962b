"""tests/api/test_ext_tags.py with the registry's storage on S3 (see conftest.py)."""
from tests.api.test_ext_tags import *  # noqa: F401,F403
