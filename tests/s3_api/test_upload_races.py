"""tests/api/test_upload_races.py with the registry's storage on S3 (see conftest.py)."""
from tests.api.test_upload_races import *  # noqa: F401,F403
