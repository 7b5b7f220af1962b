"""The storage driver seam (base.py) and its drivers: the filesystem and S3."""
