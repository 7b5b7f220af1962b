"""Media types the registry understands (OCI image-spec and Docker schema 2)."""
from __future__ import annotations

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"

IMAGE_MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEXES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFESTS = IMAGE_MANIFESTS | INDEXES

# The empty descriptor's blob is the two bytes "{}" (image-spec "Guidance for an Empty Descriptor").
EMPTY_BLOB = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

# Layers that are not pushed to registries (image-spec "Non-distributable layers", Docker foreign layers).
NON_DISTRIBUTABLE_MARKERS = ("nondistributable", "foreign")


def base_type(content_type: str | None) -> str:
    """The media type without parameters, lower-cased ('' when absent)."""
    return (content_type or "").split(";", 1)[0].strip().lower()
