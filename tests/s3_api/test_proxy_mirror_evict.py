"""tests/proxy/test_mirror_evict.py with the registry's storage on S3 (see conftest.py): the mirror's
cache eviction, then gc freeing the blobs. Left out: test_the_retention_command_plans_evictions,
which runs the `retention` command with --data-dir alone (on S3 the command needs the
configuration's [storage.s3]; the plan it prints is checked in-process by the tests kept)."""
from tests.proxy.test_mirror_evict import *  # noqa: F401,F403

del test_the_retention_command_plans_evictions  # noqa: F821
