"""tests/test_gc_runs.py with the registry's storage on S3 (see conftest.py; docs/gc.md#on-s3): one run at a
time, the scheduler, retention first, the metrics. Left out: the tests that run the `gc` command with
--data-dir alone (on S3 it needs the configuration: test_object_gc.py runs it so) and those about
files a killed run leaves under gc/ (on S3 a take is one DELETE under the blob's lease: nothing is
left half-taken; test_object_gc.py fails a run before a delete)."""
from tests.test_gc_runs import *  # noqa: F401,F403

del test_dry_run_prints_what_would_go_with_sizes_and_changes_nothing  # noqa: F821
del test_gc_command_reports_bytes_freed_per_repository_and_check_stays_clean  # noqa: F821
del test_a_run_killed_half_way_loses_nothing_and_the_next_run_finishes  # noqa: F821
del test_the_scheduler_puts_back_what_a_failed_run_left  # noqa: F821
del test_gc_applies_retention_rules_first_and_collects_what_they_free  # noqa: F821
