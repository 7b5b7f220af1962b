"""What the test_push_*.py files share: the push tests' repository and the suite's testBlobA."""
from __future__ import annotations

from tests.support.oci_client import random_blob

NAME = "conformance/push-test"
BLOB_A = random_blob(42, 1)  # testBlobA
