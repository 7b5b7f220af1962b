"""The S3 driver (AWS S3 and compatible stores: Ceph RGW, MinIO, R2, GCS's S3 API), on boto3.

boto3 is the reference S3 client: SigV4 signing, the standard and legacy
retry modes with backoff on throttling (``SlowDown``, 503), multipart
uploads and presigned URLs, kept in step with AWS. It costs ~0.35 s and
~38 MiB when first imported, so it is imported only when this driver is
configured.

Objects live under ``<prefix>/<path>`` in one bucket. S3 has no
directories, no rename and no append: a directory is a prefix with objects
below it; ``move`` is a server-side copy then a delete; new large objects
are written as multipart uploads whose parts are spooled through a temp
file on local disk (never held in memory); ``compose`` (finishing a chunked
upload) copies chunks of 5 MiB or more server-side (``UploadPartCopy``) and
joins smaller neighbours through the local spool, so no chunk is read
back in full. PUT, CompleteMultipartUpload and CopyObject make an object
visible whole or not at all, which is the atomicity the seam promises.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
import threading
from typing import Any, BinaryIO, Iterator

from registry_ext.storage.driver.base import (DriverError, FileInfo, FileWriter, InvalidOffset, PathNotFound,
                                              StorageDriver, StorageFull, Unavailable, check_path, join)
from registry_ext.storage.driver.s3_upload import MAX_COPY_PART, MIN_PART, Multipart, Writer, copy_stream

NAME = "s3"
_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}
_FULL = {"QuotaExceeded", "EntityTooLarge", "InsufficientCapacity"}
_TRANSIENT = {"500", "502", "503", "504", "SlowDown", "InternalError", "ServiceUnavailable",
              "RequestTimeout", "Throttling", "ThrottlingException", "RequestTimeTooSkewed"}


@dataclasses.dataclass(frozen=True)
class S3Options:
    bucket: str
    prefix: str = ""
    endpoint_url: str = ""
    region: str = "us-east-1"
    path_style: bool = False
    access_key: str = ""
    secret_key: str = ""
    verify_tls: bool = True
    ca_bundle: str = ""
    part_size: int = 16 * 1024 * 1024
    max_connections: int = 32
    max_attempts: int = 5
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    redirect: bool = False
    redirect_expires: int = 600


class S3Driver(StorageDriver):
    name = NAME
    can_append = False

    def __init__(self, options: S3Options, spool_dir: str | None = None):
        self.options = options
        self.spool_dir = spool_dir
        self._client: Any = None
        self._pid = -1
        self._lock = threading.Lock()

    # -- client -----------------------------------------------------------------
    @property
    def client(self):
        """The boto3 client of this process (made after fork: a pool must not cross it)."""
        if self._client is None or self._pid != os.getpid():
            with self._lock:
                if self._client is None or self._pid != os.getpid():
                    self._client = self._make_client()
                    self._pid = os.getpid()
        return self._client

    def _make_client(self):
        import boto3
        from botocore.config import Config

        o = self.options
        config = Config(
            region_name=o.region,
            s3={"addressing_style": "path" if o.path_style else "auto"},
            retries={"mode": "standard", "max_attempts": o.max_attempts},
            max_pool_connections=o.max_connections,
            connect_timeout=o.connect_timeout,
            read_timeout=o.read_timeout,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        kwargs: dict[str, Any] = {"config": config}
        if o.endpoint_url:
            kwargs["endpoint_url"] = o.endpoint_url
        if o.access_key:
            kwargs["aws_access_key_id"] = o.access_key
            kwargs["aws_secret_access_key"] = o.secret_key
        kwargs["verify"] = (o.ca_bundle or True) if o.verify_tls else False
        return boto3.session.Session().client("s3", **kwargs)

    def key(self, path: str, allow_root: bool = False) -> str:
        return join(self.options.prefix.strip("/"), check_path(NAME, path, allow_root=allow_root))

    def _call(self, path: str, method: str, **kwargs):
        """One client call with its errors translated."""
        try:
            return getattr(self.client, method)(Bucket=self.options.bucket, **kwargs)
        except Exception as exc:  # noqa: BLE001 - botocore raises many types; all are translated
            raise translate(exc, path) from None

    # -- reads ------------------------------------------------------------------
    def get_content(self, path: str) -> bytes:
        resp = self._call(path, "get_object", Key=self.key(path))
        with resp["Body"] as body:
            return _read_body(body, path)

    def reader(self, path: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        if offset < 0 or (length is not None and length < 0):
            raise InvalidOffset(NAME, path, offset)
        if length == 0:
            self.stat(path)
            return _Stream(None)
        end = "" if length is None else str(offset + length - 1)
        try:
            resp = self._call(path, "get_object", Key=self.key(path),
                              **({"Range": f"bytes={offset}-{end}"} if offset or end else {}))
        except InvalidOffset:
            if self.stat(path).size == offset:
                return _Stream(None)  # reading from the end: nothing
            raise InvalidOffset(NAME, path, offset) from None
        return _Stream(resp["Body"], path)

    def stat(self, path: str) -> FileInfo:
        if path:
            try:
                head = self._call(path, "head_object", Key=self.key(path))
                return FileInfo(path, head["ContentLength"], int(head["LastModified"].timestamp() * 1000))
            except PathNotFound:
                pass
        prefix = self.key(path, allow_root=True)
        resp = self._call(path, "list_objects_v2", Prefix=prefix + "/" if prefix else "", MaxKeys=1)
        if not resp.get("KeyCount"):
            raise PathNotFound(NAME, path)
        return FileInfo(path, 0, 0, True)

    def list(self, path: str) -> list[str]:
        prefix = self.key(path, allow_root=True)
        prefix = prefix + "/" if prefix else ""
        names: set[str] = set()
        for page in self._pages(path, Prefix=prefix, Delimiter="/"):
            names.update(o["Key"][len(prefix):] for o in page.get("Contents", ()))
            names.update(p["Prefix"][len(prefix):].rstrip("/") for p in page.get("CommonPrefixes", ()))
        names.discard("")
        if not names:
            raise PathNotFound(NAME, path)
        return sorted(names)

    def walk(self, path: str) -> Iterator[FileInfo]:
        prefix = self.key(path, allow_root=True)
        prefix = prefix + "/" if prefix else ""
        strip = len(self.options.prefix.strip("/")) + 1 if self.options.prefix.strip("/") else 0
        for page in self._pages(path, Prefix=prefix):
            for obj in page.get("Contents", ()):
                yield FileInfo(obj["Key"][strip:], obj["Size"], int(obj["LastModified"].timestamp() * 1000))

    def _pages(self, path: str, **kwargs) -> Iterator[dict]:
        token = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = self._call(path, "list_objects_v2", **kwargs, **extra)
            yield page
            if not page.get("IsTruncated"):
                return
            token = page["NextContinuationToken"]

    # -- writes -----------------------------------------------------------------
    def put_content(self, path: str, data: bytes, durable: bool = True) -> None:
        self._call(path, "put_object", Key=self.key(path), Body=data)

    def put_if_absent(self, path: str, data: bytes) -> bool:
        try:
            self._call(path, "put_object", Key=self.key(path), Body=data, IfNoneMatch="*")
        except _PreconditionFailed:
            return False
        return True

    def writer(self, path: str) -> FileWriter:
        return Writer(self, path)

    def move(self, src: str, dst: str) -> None:
        size = self.stat(src).size
        self.copy(src, dst, size)
        self._call(src, "delete_object", Key=self.key(src))

    def copy(self, src: str, dst: str, size: int) -> None:
        """Server-side copy (multipart above 5 GiB)."""
        if size <= MAX_COPY_PART:
            self._call(dst, "copy_object", Key=self.key(dst),
                       CopySource={"Bucket": self.options.bucket, "Key": self.key(src)})
            return
        with Multipart(self, dst) as upload:
            for start in range(0, size, MAX_COPY_PART):
                upload.copy_part(src, start, min(size, start + MAX_COPY_PART) - 1)
            upload.complete()

    def delete(self, path: str) -> bool:
        if path:
            try:
                self._call(path, "head_object", Key=self.key(path))
                self._call(path, "delete_object", Key=self.key(path))
                return True
            except PathNotFound:
                pass
        doomed = [info.path for info in self.walk(path)]
        for start in range(0, len(doomed), 1000):
            batch = [{"Key": self.key(p)} for p in doomed[start:start + 1000]]
            resp = self._call(path, "delete_objects", Delete={"Objects": batch, "Quiet": True})
            if resp.get("Errors"):
                raise DriverError(NAME, f"delete of {path} failed: {resp['Errors'][0]}")
        return bool(doomed)

    def compose(self, dst: str, sources: list[str]) -> int:
        sizes = [self.stat(src).size for src in sources]
        total = sum(sizes)
        if len(sources) == 1 and total <= MAX_COPY_PART:
            self.copy(sources[0], dst, total)
            return total
        if total < MIN_PART:
            with self.writer(dst) as out:
                for src in sources:
                    copy_stream(self.reader(src), out)
                out.commit()
            return total
        with Multipart(self, dst) as upload:
            for src, size in zip(sources, sizes):
                upload.add_source(src, size)
            upload.complete()
        return total

    def redirect_url(self, path: str, method: str = "GET", expires: int = 600) -> str | None:
        if not self.options.redirect or method not in ("GET", "HEAD"):
            return None
        operation = "get_object" if method == "GET" else "head_object"
        try:
            return self.client.generate_presigned_url(
                operation, Params={"Bucket": self.options.bucket, "Key": self.key(path)},
                ExpiresIn=self.options.redirect_expires)
        except Exception as exc:  # noqa: BLE001
            raise translate(exc, path) from None

    def check(self) -> None:
        """The bucket exists and takes our credentials (one HEAD); else DriverError saying which."""
        bucket = self.options.bucket
        try:
            self.client.head_bucket(Bucket=bucket)
        except Exception as exc:  # noqa: BLE001 - botocore raises many types; all are translated
            error = translate(exc, "")
            if isinstance(error, PathNotFound):
                raise DriverError(NAME, f"bucket {bucket!r} does not exist (the registry never creates "
                                        "buckets: create it first)") from None
            if "(403)" in error.detail or "(AccessDenied)" in error.detail:
                raise DriverError(NAME, f"access to bucket {bucket!r} was refused (403): check "
                                        "storage.s3.access_key/secret_key or the AWS_* credentials") from None
            raise error from None

    def spool(self) -> BinaryIO:
        """A temp file on local disk for part data."""
        return tempfile.TemporaryFile(dir=self.spool_dir)


class _PreconditionFailed(DriverError):
    pass


def translate(exc: Exception, path: str) -> DriverError:
    """A boto3/botocore exception as the driver's error."""
    if isinstance(exc, DriverError):
        return exc
    from botocore.exceptions import (BotoCoreError, ClientError, ConnectionError as BotoConnectionError,
                                     NoCredentialsError)

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        message = error.get("Message") or code
        if code in _NOT_FOUND or (status == "404" and code != "NoSuchBucket"):
            return PathNotFound(NAME, path)
        if code == "InvalidRange" or status == "416":
            return InvalidOffset(NAME, path, -1)
        if code == "PreconditionFailed" or status == "412":
            return _PreconditionFailed(NAME, f"{path} exists")
        if code in _FULL:
            return StorageFull(NAME, f"bucket refused {path}: {message}")
        if code in _TRANSIENT or status in _TRANSIENT:
            return Unavailable(NAME, f"S3 is unavailable ({code or status}): {message}")
        return DriverError(NAME, f"S3 refused {path} ({code or status}): {message}")
    if isinstance(exc, NoCredentialsError):
        return DriverError(NAME, "no S3 credentials: set storage.s3.access_key/secret_key or AWS_* variables")
    if isinstance(exc, (BotoConnectionError, BotoCoreError, OSError)):
        return Unavailable(NAME, f"S3 cannot be reached: {exc}")
    return DriverError(NAME, f"{path}: {exc}")


class _Stream:
    """A StreamingBody as a file-like object whose errors are driver errors."""

    def __init__(self, body, path: str = ""):
        self.body = body
        self.path = path

    def read(self, size: int = -1) -> bytes:
        if self.body is None:
            return b""
        try:
            return self.body.read(None if size is None or size < 0 else size)
        except Exception as exc:  # noqa: BLE001
            raise translate(exc, self.path) from None

    def close(self) -> None:
        if self.body is not None:
            self.body.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _read_body(body, path: str) -> bytes:
    try:
        return body.read()
    except Exception as exc:  # noqa: BLE001
        raise translate(exc, path) from None
