"""The storage driver contract, run against every driver (distribution's driver/testsuites in spirit).

Each test runs on the filesystem driver and on the S3 driver against a real S3 server
(Ceph RGW, tests/support/s3server). S3's part size is set to its 5 MiB minimum so that a
few MiB exercise multipart uploads and server-side part copies.
"""
from __future__ import annotations

import concurrent.futures
import io
import os
import uuid

import pytest
import requests

from registry_ext.storage.driver.base import InvalidOffset, InvalidPath, PathNotFound, StorageDriver
from registry_ext.storage.driver.filesystem import FilesystemDriver
from registry_ext.storage.driver.s3 import MIN_PART, S3Driver, S3Options

MiB = 1024 * 1024


@pytest.fixture(params=["filesystem", "s3"])
def driver(request, tmp_path) -> StorageDriver:
    if request.param == "filesystem":
        return FilesystemDriver(tmp_path / "root")
    server = request.getfixturevalue("s3_server")
    bucket = request.config.cache_bucket if hasattr(request.config, "cache_bucket") else None
    if bucket is None:
        bucket = request.config.cache_bucket = server.new_bucket("contract")
    options = S3Options(bucket=bucket, prefix=f"p{uuid.uuid4().hex[:10]}", endpoint_url=server.endpoint,
                        region=server.region, path_style=True, access_key=server.access_key,
                        secret_key=server.secret_key, part_size=MIN_PART, redirect=True)
    return S3Driver(options, spool_dir=str(tmp_path))


def blob(size: int, seed: int = 0) -> bytes:
    return (bytes(range(256)) * (size // 256 + 2))[seed % 256:][:size] if size else b""


def test_put_get_overwrite(driver):
    driver.put_content("a/b/c", b"one")
    assert driver.get_content("a/b/c") == b"one"
    driver.put_content("a/b/c", b"two", durable=False)
    assert driver.get_content("a/b/c") == b"two"
    driver.put_content("empty", b"")
    assert driver.get_content("empty") == b""


def test_tilde_names_a_history_segment(driver):
    """``<tag>~<n>`` (storage/layout.py) is a valid key, listed after the tag's own."""
    driver.put_content("h/v1~1", b"one")
    driver.put_content("h/v1", b"zero")
    assert driver.get_content("h/v1~1") == b"one"
    assert driver.list("h") == ["v1", "v1~1"]


def test_missing_is_path_not_found(driver):
    with pytest.raises(PathNotFound):
        driver.get_content("no/such")
    with pytest.raises(PathNotFound):
        driver.reader("no/such")
    with pytest.raises(PathNotFound):
        driver.stat("no/such")
    with pytest.raises(PathNotFound):
        driver.list("no/such")
    with pytest.raises(PathNotFound):
        driver.move("no/such", "x")
    assert driver.delete("no/such") is False


@pytest.mark.parametrize("path", ["/abs", "a//b", "a/../b", "..", "a/.", "trailing/", "sp ace", "a/\x00",
                                  "new\nline", "x" * 1100, ""])
def test_invalid_paths(driver, path):
    with pytest.raises(InvalidPath):
        driver.put_content(path, b"x")
    with pytest.raises(InvalidPath):
        driver.get_content(path)


def test_put_if_absent_first_writer_wins(driver):
    assert driver.put_if_absent("once", b"first") is True
    assert driver.put_if_absent("once", b"second") is False
    assert driver.get_content("once") == b"first"


def test_put_if_absent_concurrent(driver):
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda i: driver.put_if_absent("race", str(i).encode()), range(8)))
    assert won.count(True) == 1
    assert driver.get_content("race") == str(won.index(True)).encode()


def test_reader_offsets(driver):
    data = blob(1000)
    driver.put_content("r", data)
    with driver.reader("r") as stream:
        assert stream.read() == data
    with driver.reader("r", 10) as stream:
        assert stream.read() == data[10:]
    with driver.reader("r", 10, 20) as stream:
        assert stream.read() == data[10:30]
    with driver.reader("r", 1000) as stream:
        assert stream.read() == b""
    with pytest.raises(InvalidOffset):
        driver.reader("r", 1001)


@pytest.mark.parametrize("size", [0, 100, MIN_PART + 123, 2 * MIN_PART + 7])
def test_writer_visible_only_after_commit(driver, size):
    data = blob(size, 3)
    writer = driver.writer("w/obj")
    for start in range(0, size, 700_000):
        writer.write(data[start:start + 700_000])
    assert writer.size == size
    with pytest.raises(PathNotFound):
        driver.stat("w/obj")
    writer.commit()
    assert driver.get_content("w/obj") == data
    assert driver.stat("w/obj").size == size


def test_writer_cancel_leaves_nothing(driver):
    driver.put_content("w/keep", b"old")
    writer = driver.writer("w/keep")
    writer.write(blob(MIN_PART + 10))
    writer.cancel()
    assert driver.get_content("w/keep") == b"old"
    with driver.writer("w/gone") as writer:
        writer.write(b"abc")  # leaving the block without commit cancels
    with pytest.raises(PathNotFound):
        driver.stat("w/gone")


def test_stat_file_and_directory(driver):
    driver.put_content("d/sub/f", b"12345")
    info = driver.stat("d/sub/f")
    assert (info.size, info.is_dir, info.path) == (5, False, "d/sub/f")
    assert info.modified_ms > 0
    assert driver.stat("d/sub").is_dir
    assert driver.stat("d").is_dir


def test_list_children_sorted(driver):
    for path in ("l/b", "l/a/x", "l/a/y", "l/c/z/deep", "other"):
        driver.put_content(path, b"")
    assert driver.list("l") == ["a", "b", "c"]
    assert driver.list("l/a") == ["x", "y"]
    assert "l" in driver.list("") and "other" in driver.list("")


def test_walk_recursive_in_order(driver):
    for path in ("w/b", "w/a/2", "w/a/1", "w/c/d/e"):
        driver.put_content(path, path.encode())
    assert [i.path for i in driver.walk("w")] == ["w/a/1", "w/a/2", "w/b", "w/c/d/e"]
    assert [i.size for i in driver.walk("w/a")] == [5, 5]
    assert list(driver.walk("nothing")) == []


def test_move_replaces_destination(driver):
    driver.put_content("m/src", b"new")
    driver.put_content("m/dst", b"old")
    driver.move("m/src", "m/dst")
    assert driver.get_content("m/dst") == b"new"
    with pytest.raises(PathNotFound):
        driver.stat("m/src")
    driver.put_content("m/src2", b"x")
    driver.move("m/src2", "m/new/deeper/dst")
    assert driver.get_content("m/new/deeper/dst") == b"x"


def test_delete_file_and_tree(driver):
    for path in ("t/a", "t/b/c", "t/b/d", "keep"):
        driver.put_content(path, b"x")
    assert driver.delete("t/a") is True
    assert driver.delete("t") is True
    assert list(driver.walk("t")) == []
    assert driver.get_content("keep") == b"x"


@pytest.mark.parametrize("sizes", [
    [10], [0], [10, 20, 30], [MIN_PART + 1], [MIN_PART + 5, 100, MIN_PART + 9],
    [100, MIN_PART * 2 + 3], [MIN_PART - 1, MIN_PART - 1, 50], [3 * MIN_PART + 11, 0, 7]])
def test_compose_concatenates(driver, sizes):
    parts = [blob(size, i + 1) for i, size in enumerate(sizes)]
    names = [f"c/src{i}" for i in range(len(parts))]
    for name, data in zip(names, parts):
        driver.put_content(name, data)
    assert driver.compose("c/dst", names) == sum(sizes)
    assert driver.get_content("c/dst") == b"".join(parts)
    assert all(driver.get_content(n) == d for n, d in zip(names, parts))  # sources stay


def test_append_when_supported(tmp_path):
    """Only the filesystem appends (``can_append``); the S3 driver composes instead."""
    driver = FilesystemDriver(tmp_path)
    assert driver.append("ap/data", io.BytesIO(b"abc"), None) == 3
    assert driver.append("ap/data", io.BytesIO(b"defgh"), 5) == 5
    assert driver.get_content("ap/data") == b"abcdefgh"
    assert driver.append("ap/data", io.BytesIO(b"123456"), 3) == 4  # one byte over the limit is read
    assert S3Driver.can_append is False


def test_append_failure_truncates_back(tmp_path):
    driver = FilesystemDriver(tmp_path)
    driver.append("ap/data", io.BytesIO(b"keep"), None)

    class Broken(io.RawIOBase):
        calls = 0

        def read(self, size=-1):
            self.calls += 1
            if self.calls > 2:
                raise ConnectionResetError("client went away")
            return b"x" * 1000

    with pytest.raises(ConnectionResetError):
        driver.append("ap/data", Broken(), None)
    assert driver.get_content("ap/data") == b"keep"


def test_redirect_url(driver):
    driver.put_content("red/obj", b"direct bytes")
    url = driver.redirect_url("red/obj")
    if isinstance(driver, FilesystemDriver):
        assert url is None
        assert os.path.exists(driver.local_path("red/obj"))
        return
    assert requests.get(url, timeout=10).content == b"direct bytes"
    tampered = url.replace("Signature=", "Signature=0")
    assert requests.get(tampered, timeout=10).status_code == 403
