"""Writing new S3 objects for the S3 driver (s3.py): multipart uploads whose parts are spooled through a
local temp file (never held in memory), server-side part copies for ``compose``, and the driver's
``FileWriter``. Kept apart from s3.py, which reads, lists, moves and deletes; the driver is passed in
(its ``_call``, ``key``, ``spool``, ``reader`` and ``options``), so this module does not import it."""
from __future__ import annotations

from typing import Any, BinaryIO

from registry_ext.storage.driver.base import DriverError, FileWriter

MIN_PART = 5 * 1024 * 1024          # S3's minimum size of every part but the last
MAX_COPY_PART = 5 * 1024 * 1024 * 1024  # S3's maximum CopyObject / UploadPartCopy size
SPOOL_CHUNK = 1 << 20


class Multipart:
    """One multipart upload: parts from a local spool or copied server-side; aborted unless completed."""

    def __init__(self, driver: Any, path: str):
        self.driver = driver
        self.path = path
        self.key = driver.key(path)
        self.upload_id = driver._call(path, "create_multipart_upload", Key=self.key)["UploadId"]
        self.parts: list[dict] = []
        self.spool = driver.spool()
        self.spooled = 0
        self.done = False

    def __enter__(self) -> "Multipart":
        return self

    def __exit__(self, *exc) -> None:
        self.spool.close()
        if not self.done:
            try:
                self.driver._call(self.path, "abort_multipart_upload", Key=self.key, UploadId=self.upload_id)
            except DriverError:
                pass  # left for the bucket's lifecycle rule / purge-uploads

    def write(self, data: bytes) -> None:
        """Spool bytes; upload a part each time the spool reaches the part size."""
        self.spool.write(data)
        self.spooled += len(data)
        if self.spooled >= self.driver.options.part_size:
            self.flush()

    def flush(self) -> None:
        if not self.spooled:
            return
        self.spool.seek(0)
        number = len(self.parts) + 1
        resp = self.driver._call(self.path, "upload_part", Key=self.key, UploadId=self.upload_id,
                                 PartNumber=number, Body=self.spool,
                                 ContentLength=self.spooled)
        self.parts.append({"PartNumber": number, "ETag": resp["ETag"]})
        self.spool.seek(0)
        self.spool.truncate()
        self.spooled = 0

    def copy_part(self, src: str, first: int, last: int) -> None:
        number = len(self.parts) + 1
        resp = self.driver._call(self.path, "upload_part_copy", Key=self.key, UploadId=self.upload_id,
                                 PartNumber=number, CopySourceRange=f"bytes={first}-{last}",
                                 CopySource={"Bucket": self.driver.options.bucket, "Key": self.driver.key(src)})
        self.parts.append({"PartNumber": number, "ETag": resp["CopyPartResult"]["ETag"]})

    def add_source(self, src: str, size: int) -> None:
        """Append an object: copied server-side where it can be, through the spool otherwise."""
        offset = 0
        if self.spooled:  # fill the spool up to a whole part from the head of this source
            head = min(size, MIN_PART - self.spooled)
            with self.driver.reader(src, 0, head) as stream:
                while chunk := stream.read(SPOOL_CHUNK):
                    self.write(chunk)
            offset = head
            if self.spooled >= MIN_PART:
                self.flush()
        while size - offset >= MIN_PART:
            last = min(size, offset + MAX_COPY_PART) - 1
            self.copy_part(src, offset, last)
            offset = last + 1
        if offset < size:
            with self.driver.reader(src, offset, size - offset) as stream:
                while chunk := stream.read(SPOOL_CHUNK):
                    self.write(chunk)

    def complete(self) -> None:
        self.flush()
        if not self.parts:  # an empty object: one empty part
            resp = self.driver._call(self.path, "upload_part", Key=self.key, UploadId=self.upload_id,
                                     PartNumber=1, Body=b"")
            self.parts.append({"PartNumber": 1, "ETag": resp["ETag"]})
        self.driver._call(self.path, "complete_multipart_upload", Key=self.key, UploadId=self.upload_id,
                          MultipartUpload={"Parts": self.parts})
        self.done = True


class Writer(FileWriter):
    """A new object: small ones in one PUT at commit, large ones as a multipart upload."""

    def __init__(self, driver: Any, path: str):
        self.driver = driver
        self.path = path
        driver.key(path)
        self.spool = driver.spool()
        self.upload: Multipart | None = None
        self._size = 0
        self.finished = False

    def write(self, data: bytes) -> int:
        if self.upload is None and self._size + len(data) >= self.driver.options.part_size:
            self.upload = Multipart(self.driver, self.path)
            self.spool.seek(0)
            while chunk := self.spool.read(SPOOL_CHUNK):
                self.upload.write(chunk)
        if self.upload is not None:
            self.upload.write(data)
        else:
            self.spool.write(data)
        self._size += len(data)
        return len(data)

    @property
    def size(self) -> int:
        return self._size

    def commit(self) -> None:
        self.finished = True
        try:
            if self.upload is not None:
                with self.upload:
                    self.upload.complete()
            else:
                self.spool.seek(0)
                self.driver._call(self.path, "put_object", Key=self.driver.key(self.path), Body=self.spool,
                                  ContentLength=self._size)
        finally:
            self.spool.close()

    def cancel(self) -> None:
        self.finished = True
        self.spool.close()
        if self.upload is not None:
            self.upload.__exit__(None, None, None)


def copy_stream(stream: BinaryIO, out: FileWriter) -> None:
    with stream:
        while chunk := stream.read(SPOOL_CHUNK):
            out.write(chunk)
