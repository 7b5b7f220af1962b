"""The push, pull, listing, history and error tests of tests/api/, run with storage on S3 (conftest.py).

Only tests that look at the registry through HTTP are imported: the ones that open files under the
storage root (tests/api/test_upload_sessions.py, test_tag_history.py, ...) describe the filesystem store.
"""
from __future__ import annotations

from tests.api.test_discovery import *  # noqa: F401,F403
from tests.api.test_errors_manifests import *  # noqa: F401,F403
from tests.api.test_errors_uploads import *  # noqa: F401,F403
from tests.api.test_ext_tags import *  # noqa: F401,F403
from tests.api.test_immutable_tags import *  # noqa: F401,F403
from tests.api.test_management import *  # noqa: F401,F403
from tests.api.test_manifest_types import *  # noqa: F401,F403
from tests.api.test_pull import *  # noqa: F401,F403
from tests.api.test_push_chunked import *  # noqa: F401,F403
from tests.api.test_push_manifests import *  # noqa: F401,F403
from tests.api.test_push_monolithic import *  # noqa: F401,F403
from tests.api.test_push_mount import *  # noqa: F401,F403
from tests.api.test_push_tag_params import *  # noqa: F401,F403
from tests.api.test_referenced_manifests import *  # noqa: F401,F403
from tests.api.test_upload_races import *  # noqa: F401,F403
