"""tests/api/test_referenced_manifests.py with the registry's storage on S3 (see conftest.py)."""
from tests.api.test_referenced_manifests import *  # noqa: F401,F403
