"""tests/api/test_push_tag_params.py with the registry's storage on S3 (see conftest.py)."""
from tests.api.test_push_tag_params import *  # noqa: F401,F403
