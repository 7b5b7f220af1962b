"""Artifacts and referrers with the ``oras`` Python client (0.2.x).

oras-py's high-level ``push`` can set a ``subject`` but not ``artifactType``;
the artifact type of such a manifest is its config mediaType (which the
referrers API must report when ``artifactType`` is absent). A second referrer
is pushed with the client's lower-level helpers and an explicit
``artifactType`` plus the OCI empty config.
"""
from __future__ import annotations

import json
from dataclasses import asdict

import pytest

import oras.defaults
import oras.oci
from oras.client import OrasClient

from tests.support.e2e_oci import (EMPTY_V1, INDEX_V1, MANIFEST_V1, describe, digest_of, expect, fresh,
                     random_bytes)

pytestmark = pytest.mark.e2e

ARTIFACT_CONFIG = "application/vnd.example.artifact.config.v1+json"
SBOM_TYPE = "application/vnd.example.sbom.v1+json"
SIGNATURE_TYPE = "application/vnd.example.signature.v1"


class Oras(OrasClient):
    """oras-py without its retry decorator, which sleeps 3s..83s between
    attempts on any HTTP 500 or exception: failures should be fast and show
    the first error."""

    do_request = OrasClient.do_request.__wrapped__


@pytest.fixture
def oras_client(registry):
    return Oras(hostname=registry.host, insecure=True)


def write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def get_manifest_bytes(registry, repo: str, reference: str) -> bytes:
    resp = expect(fresh("GET", f"{registry.url}/v2/{repo}/manifests/{reference}",
                        headers={"Accept": MANIFEST_V1}), 200, f"GET manifest {reference}: ")
    assert resp.headers.get("Docker-Content-Digest") == digest_of(resp.content), describe(resp)
    return resp.content


def push_artifact(client, registry, tmp_path, repo, tag, **kwargs):
    """High-level oras push; returns (manifest bytes as stored, file contents,
    the manifest PUT response)."""
    files = {"payload.bin": random_bytes(150_000, seed=len(tag)),
             "notes.txt": f"artifact {tag}\n".encode()}
    paths = [write(tmp_path / "push" / tag / name, data) for name, data in files.items()]
    config = write(tmp_path / "push" / tag / "config.json", json.dumps({"tag": tag}).encode())
    kwargs.setdefault("manifest_config", f"{config}:{ARTIFACT_CONFIG}")
    resp = client.push(target=f"{registry.host}/{repo}:{tag}",
                       files=[f"{p}:application/vnd.example.file.v1" for p in paths],
                       disable_path_validation=True, quiet=True, **kwargs)
    expect(resp, 201, f"oras push {tag}: ")
    return get_manifest_bytes(registry, repo, tag), files, resp


def test_oras_push_pull_roundtrip(registry, oras_client, tmp_path):
    repo = "e2e/oras/files"
    annotations = {"org.example.kind": "artifact", "org.opencontainers.image.created": "2024-01-01T00:00:00Z"}
    manifest_bytes, files, _ = push_artifact(oras_client, registry, tmp_path, repo, "v1",
                                          manifest_annotations=annotations)
    manifest = json.loads(manifest_bytes)
    assert manifest["config"]["mediaType"] == ARTIFACT_CONFIG
    assert manifest["annotations"] == annotations
    assert sorted(layer["annotations"][oras.defaults.annotation_title]
                  for layer in manifest["layers"]) == sorted(files)

    out = tmp_path / "pulled"
    pulled = oras_client.pull(target=f"{registry.host}/{repo}:v1", outdir=str(out))
    assert sorted(p.rsplit("/", 1)[-1] for p in pulled) == sorted(files)
    for name, data in files.items():
        assert (out / name).read_bytes() == data, f"{name} differs after pull"

    # oras' chunked mode: POST, PATCH with Content-Range per 64 KiB, PUT ?digest=
    manifest_bytes2, files2, _ = push_artifact(oras_client, registry, tmp_path, repo, "chunked-v2",
                                            do_chunked=True, chunk_size=64 * 1024)
    out2 = tmp_path / "pulled2"
    oras_client.pull(target=f"{registry.host}/{repo}:chunked-v2", outdir=str(out2))
    for name, data in files2.items():
        assert (out2 / name).read_bytes() == data

    assert sorted(oras_client.get_tags(f"{registry.host}/{repo}")) == ["chunked-v2", "v1"]
    fetched = oras_client.get_manifest(f"{registry.host}/{repo}@{digest_of(manifest_bytes2)}")
    assert fetched == json.loads(manifest_bytes2)


def push_signature(client, registry, tmp_path, repo, subject: oras.oci.Subject,
                   annotations: dict) -> tuple[bytes, object]:
    """Low-level push: layer + OCI empty config + manifest with artifactType and
    subject, PUT by digest. Returns (manifest bytes, PUT response)."""
    container = client.get_container(f"{registry.host}/{repo}")
    sig = write(tmp_path / "sig" / "signature.sig", b"not really a signature\n")
    layer = oras.oci.NewLayer(str(sig), media_type="application/vnd.example.signature.v1+sig")
    expect(client.upload_blob(str(sig), container, layer), 201, "upload signature blob: ")
    empty = write(tmp_path / "sig" / "empty.json", b"{}")
    empty_desc = {"mediaType": EMPTY_V1, "digest": digest_of(b"{}"), "size": 2}
    resp = client.upload_blob(str(empty), container, empty_desc)
    assert resp.status_code in (200, 201), describe(resp)  # 200: oras saw it exists already
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_V1, "artifactType": SIGNATURE_TYPE,
                "config": empty_desc, "layers": [layer], "subject": asdict(subject),
                "annotations": annotations}
    body = json.dumps(manifest).encode()  # what requests' json= sends
    by_digest = client.get_container(f"{registry.host}/{repo}@{digest_of(body)}")
    resp = client.upload_manifest(manifest, by_digest)
    expect(resp, 201, "PUT signature manifest by digest: ")
    assert get_manifest_bytes(registry, repo, digest_of(body)) == body
    return body, resp


def referrers(registry, repo, digest, artifact_type=None):
    url = f"{registry.url}/v2/{repo}/referrers/{digest}"
    params = {"artifactType": artifact_type} if artifact_type else None
    resp = expect(fresh("GET", url, params=params), 200, "GET referrers: ")
    assert resp.headers.get("Content-Type", "").split(";")[0] == INDEX_V1, describe(resp)
    body = resp.json()
    assert body.get("schemaVersion") == 2 and body.get("mediaType") == INDEX_V1, body
    return resp, body["manifests"]


def test_oras_referrers_with_subject(registry, oras_client, tmp_path):
    repo = "e2e/oras/refs"
    subject_bytes, _, put = push_artifact(oras_client, registry, tmp_path, repo, "app")
    assert "OCI-Subject" not in put.headers, describe(put)
    subject_digest = digest_of(subject_bytes)
    subject = oras.oci.Subject(mediaType=MANIFEST_V1, digest=subject_digest,
                               size=len(subject_bytes))
    assert oras.oci.Subject.from_manifest(json.loads(subject_bytes)).digest == subject_digest

    # Referrer A: oras' own push with subject=; type comes from config mediaType.
    sbom_annotations = {"org.example.kind": "sbom", "org.opencontainers.image.created": "2024-02-02T00:00:00Z"}
    sbom_cfg = write(tmp_path / "sbom.json", b'{"spdxVersion": "SPDX-2.3"}')
    sbom_bytes, _, put = push_artifact(oras_client, registry, tmp_path, repo, "sbom", subject=subject,
                                  manifest_config=f"{sbom_cfg}:{SBOM_TYPE}",
                                  manifest_annotations=sbom_annotations)
    assert json.loads(sbom_bytes)["subject"] == asdict(subject)
    assert put.headers.get("OCI-Subject") == subject_digest, describe(put)

    # Referrer B: explicit artifactType, empty config, pushed by digest.
    sig_annotations = {"org.example.kind": "signature", "org.example.signer": "e2e"}
    sig_bytes, put = push_signature(oras_client, registry, tmp_path, repo, subject, sig_annotations)
    assert put.headers.get("OCI-Subject") == subject_digest, describe(put)

    resp, manifests = referrers(registry, repo, subject_digest)
    assert "OCI-Filters-Applied" not in resp.headers, describe(resp)
    by_digest = {m["digest"]: m for m in manifests}
    assert set(by_digest) == {digest_of(sbom_bytes), digest_of(sig_bytes)}, manifests
    sbom = by_digest[digest_of(sbom_bytes)]
    assert sbom["mediaType"] == MANIFEST_V1, sbom
    assert sbom["size"] == len(sbom_bytes), sbom
    assert sbom["artifactType"] == SBOM_TYPE, f"artifactType must fall back to config.mediaType: {sbom}"
    assert sbom["annotations"] == sbom_annotations, sbom
    sig = by_digest[digest_of(sig_bytes)]
    want = {"mediaType": MANIFEST_V1, "digest": digest_of(sig_bytes), "size": len(sig_bytes),
            "artifactType": SIGNATURE_TYPE, "annotations": sig_annotations}
    assert {k: sig.get(k) for k in want} == want, sig

    resp, manifests = referrers(registry, repo, subject_digest, artifact_type=SIGNATURE_TYPE)
    assert resp.headers.get("OCI-Filters-Applied") == "artifactType", describe(resp)
    assert [m["digest"] for m in manifests] == [digest_of(sig_bytes)], manifests

    resp, manifests = referrers(registry, repo, subject_digest, artifact_type=SBOM_TYPE)
    assert resp.headers.get("OCI-Filters-Applied") == "artifactType", describe(resp)
    assert [m["digest"] for m in manifests] == [digest_of(sbom_bytes)], manifests

    resp, manifests = referrers(registry, repo, subject_digest, artifact_type="application/x-none")
    assert manifests == [] and resp.headers.get("OCI-Filters-Applied") == "artifactType", describe(resp)

    # Nothing refers to the signature; an unknown digest also gets an empty index.
    assert referrers(registry, repo, digest_of(sig_bytes))[1] == []
    assert referrers(registry, repo, digest_of(b"unknown manifest"))[1] == []

    fetched = oras_client.get_manifest(f"{registry.host}/{repo}@{digest_of(sig_bytes)}")
    assert fetched["subject"]["digest"] == subject_digest
    assert fetched["artifactType"] == SIGNATURE_TYPE
