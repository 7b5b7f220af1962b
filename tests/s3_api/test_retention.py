"""tests/api/test_retention.py with the registry's storage on S3 (see conftest.py). Left out:
test_the_command_prints_the_plan_and_dry_run_deletes_nothing, which runs the `retention` command
with --data-dir alone (on S3 the command needs the configuration's [storage.s3])."""
from tests.api.test_retention import *  # noqa: F401,F403

del test_the_command_prints_the_plan_and_dry_run_deletes_nothing  # noqa: F821
