"""What the test_errors_*.py files share: the error tests' repository."""
from __future__ import annotations

NAME = "conformance/errors-test"
