"""The resumable hash gives hashlib's digests, across save/resume at any split."""
from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from registry_ext.oci.resumable import ResumableHash, StateMismatch


@settings(max_examples=200)
@given(st.sampled_from(["sha256", "sha512"]), st.lists(st.binary(max_size=300), max_size=8))
def test_matches_hashlib_across_resumes(algorithm, pieces):
    running = ResumableHash(algorithm)
    for piece in pieces:
        running = ResumableHash.resume(running.state())
        running.update(piece)
    assert running.hexdigest() == hashlib.new(algorithm, b"".join(pieces)).hexdigest()


def test_hexdigest_does_not_finish_the_state():
    running = ResumableHash("sha256")
    running.update(b"abc")
    assert running.hexdigest() == hashlib.sha256(b"abc").hexdigest()
    running.update(b"def")
    assert running.hexdigest() == hashlib.sha256(b"abcdef").hexdigest()


def test_state_resumes_in_another_process():
    running = ResumableHash("sha512")
    running.update(b"x" * 100_000)
    code = ("import sys; from registry_ext.oci.resumable import ResumableHash as R; "
            "h = R.resume(sys.argv[1]); h.update(b'tail'); print(h.hexdigest())")
    out = subprocess.run([sys.executable, "-c", code, running.state()], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == hashlib.sha512(b"x" * 100_000 + b"tail").hexdigest()


@pytest.mark.parametrize("saved", ["md5:x:00", "sha256:OpenSSL 0.9:" + "00" * 112, "sha256",
                                   "sha256:{v}:zz", "sha256:{v}:" + "00" * 111])
def test_foreign_or_broken_states_are_refused(saved):
    version = ResumableHash("sha256").version
    with pytest.raises(StateMismatch):
        ResumableHash.resume(saved.format(v=version))
