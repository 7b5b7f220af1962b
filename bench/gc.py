"""Garbage collection: `registry-ext gc` against distribution's `garbage-collect` on the same content.

Writes the same content into both storage layouts directly (no server: the peer's garbage-collect needs
the registry stopped): ``--repos`` repositories holding ``--tags`` tags in all, one image manifest per tag
with a unique config and ``--blobs``/``--tags`` - 1 unique layers each (``--size`` bytes per blob), then
deletes the manifests of ``--delete`` of the tags as the API would (manifest link and tag; for the peer the
revision link and tag folder). Every file is dated two days back; both collectors then run once, timed,
with their peak RSS (``RUSAGE_CHILDREN`` of a fresh Python parent), and the blob bytes on disk are summed
before and after. Ours runs with a one-hour grace period against a private redis-server (for its lock).

    .venv/bin/python -m bench.gc --tags 10000 --blobs 20000

Prints Markdown; writes JSON to bench/results/. Figures: docs/benchmarks.md#garbage-collection.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from bench.peer import PEER_BINARY, OURS_BINARY

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
PEER_CONFIG = """\
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:0
"""


def write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)


def blob(seed: str, size: int) -> tuple[str, bytes]:
    data = (seed.encode() * (size // len(seed) + 1))[:size]
    return hashlib.sha256(data).hexdigest(), data


def content(tags: int, blobs: int, repos: int, size: int):
    """(repo, tag, manifest hex, manifest bytes, [(hex, bytes)] config + layers) per tag."""
    per_tag = max(blobs // tags, 2)
    for i in range(tags):
        refs = [blob(f"blob-{i}-{j}-", size) for j in range(per_tag)]
        doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                          "digest": f"sha256:{refs[0][0]}", "size": size},
               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                           "digest": f"sha256:{h}", "size": size} for h, _ in refs[1:]]}
        body = json.dumps(doc).encode()
        yield f"bench/repo{i % repos}", f"v{i}", hashlib.sha256(body).hexdigest(), body, refs


def populate(ours: str, peer: str, args) -> int:
    """Write both layouts; delete every ``args.delete``-th tag's manifest; the bytes that should go."""
    from registry_ext.storage.layout import Layout
    from registry_ext.storage.marker import prepare, write as write_marker

    layout = Layout(ours)
    os.makedirs(ours, exist_ok=True)
    write_marker(layout)
    prepare(layout)
    v2 = os.path.join(peer, "docker", "registry", "v2")
    doomed_bytes, every = 0, max(args.tags // max(args.delete, 1), 1)
    for n, (repo, tag, mhex, body, refs) in enumerate(content(args.tags, args.blobs, args.repos, args.size)):
        deleted = args.delete and n % every == 0 and n // every < args.delete
        for hexd, data in [(mhex, body), *refs]:
            write(os.path.join(ours, "blobs", "sha256", hexd[:2], hexd), data)
            write(os.path.join(v2, "blobs", "sha256", hexd[:2], hexd, "data"), data)
        for hexd, _ in refs:
            write(os.path.join(ours, "repos", repo, "_blobs", "sha256", hexd), b"")
            write(os.path.join(v2, "repositories", repo, "_layers", "sha256", hexd, "link"), f"sha256:{hexd}".encode())
        if deleted:
            doomed_bytes += len(body) + sum(len(data) for _, data in refs)
            continue
        write(os.path.join(ours, "repos", repo, "_manifests", "sha256", mhex),
              json.dumps({"media_type": OCI_MANIFEST, "size": len(body), "pushed_at": 0}).encode())
        write(os.path.join(ours, "repos", repo, "_tags", tag),
              json.dumps({"digest": f"sha256:{mhex}", "created_at": 0, "updated_at": 0}).encode())
        link = f"sha256:{mhex}".encode()
        write(os.path.join(v2, "repositories", repo, "_manifests", "revisions", "sha256", mhex, "link"), link)
        write(os.path.join(v2, "repositories", repo, "_manifests", "tags", tag, "current", "link"), link)
        write(os.path.join(v2, "repositories", repo, "_manifests", "tags", tag, "index", "sha256", mhex, "link"),
              link)
    then = time.time() - 2 * 86400
    for root in (ours, peer):
        for folder, _dirs, files in os.walk(root):
            for name in files:
                os.utime(os.path.join(folder, name), (then, then))
    return doomed_bytes


def blob_bytes(root: str) -> int:
    total = 0
    for folder, _dirs, files in os.walk(root):
        total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
    return total


def timed(cmd: list[str]) -> dict:
    """Run ``cmd``; wall seconds, peak RSS (MB) of the process, its output."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return {"seconds": seconds, "stdout": out.decode()}


def run_measured(cmd: list[str]) -> dict:
    """``timed`` in a fresh Python child, so RUSAGE_CHILDREN's peak is this command's alone."""
    code = ("import json,resource,sys;from bench.gc import timed;r=timed(sys.argv[1:]);"
            "r['peak_mb']=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024;print(json.dumps(r))")
    out = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--blobs", type=int, default=20_000)
    parser.add_argument("--repos", type=int, default=100)
    parser.add_argument("--delete", type=int, default=2_500, help="tags whose manifest is deleted")
    parser.add_argument("--size", type=int, default=2048, help="bytes per blob")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bench-gc-")
    try:
        ours, peer = os.path.join(work, "ours"), os.path.join(work, "peer")
        start = time.perf_counter()
        doomed = populate(ours, peer, args)
        populate_s = time.perf_counter() - start
        sock = os.path.join(work, "redis.sock")
        redis = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", sock, "--save", "",
                                  "--appendonly", "no"], stdout=subprocess.DEVNULL)
        try:
            while not os.path.exists(sock):
                time.sleep(0.05)
            before = {"ours": blob_bytes(os.path.join(ours, "blobs")),
                      "peer": blob_bytes(os.path.join(peer, "docker", "registry", "v2", "blobs"))}
            ours_run = run_measured([OURS_BINARY, "gc", "--data-dir", ours, "--redis-url", f"unix://{sock}",
                                     "--grace-period", "3600"])
        finally:
            redis.terminate()
            redis.wait(10)
        config = os.path.join(work, "peer.yml")
        with open(config, "w") as handle:
            handle.write(PEER_CONFIG.format(root=peer))
        peer_run = run_measured([PEER_BINARY, "garbage-collect", config])
        freed = {"ours": before["ours"] - blob_bytes(os.path.join(ours, "blobs")),
                 "peer": before["peer"] - blob_bytes(os.path.join(peer, "docker", "registry", "v2", "blobs"))}
        summary = json.loads(ours_run["stdout"])
        result = {"args": vars(args), "populate_seconds": populate_s, "expected_bytes_freed": doomed,
                  "bytes_before": before, "bytes_freed": freed, "ours_reported_bytes_freed": summary["bytes_freed"],
                  "ours": {k: v for k, v in ours_run.items() if k != "stdout"},
                  "peer": {k: v for k, v in peer_run.items() if k != "stdout"}}
        report(result)
        os.makedirs(RESULTS, exist_ok=True)
        with open(os.path.join(RESULTS, f"gc-{args.tags}.json"), "w") as handle:
            json.dump(result, handle, indent=2)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(r: dict) -> None:
    ours, peer = r["ours"], r["peer"]
    a = r["args"]
    print(f"### gc: {a['tags']:,} tags / {a['blobs']:,} blobs in {a['repos']} repositories, "
          f"{a['delete']:,} manifests deleted\n")
    print("| | registry-ext gc | docker-registry garbage-collect | ratio (ours / peer) |")
    print("| --- | --- | --- | --- |")
    seconds, peak = (ours["seconds"], peer["seconds"]), (ours["peak_mb"], peer["peak_mb"])
    print(f"| wall time | {seconds[0]:.2f} s | {seconds[1]:.2f} s | {seconds[0] / seconds[1]:.2f} |")
    print(f"| peak RSS | {peak[0]:.0f} MB | {peak[1]:.0f} MB | {peak[0] / peak[1]:.2f} |")
    fo, fp = r["bytes_freed"]["ours"], r["bytes_freed"]["peer"]
    ratio = f"{fo / fp:.3f}" if fp else "-"
    print(f"| blob bytes freed | {fo:,} | {fp:,} | {ratio} |")
    print(f"\nexpected to go: {r['expected_bytes_freed']:,} bytes; ours reported {r['ours_reported_bytes_freed']:,}")


if __name__ == "__main__":
    main()
