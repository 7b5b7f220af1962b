"""Mirror-diff: compare repositories of two registries tag by tag (docs/mirror-diff.md).

``diff`` is pure (two listings -> a report), ``sides`` reads a listing from
this registry (no HTTP) or from a remote (``remote``: the HTTP client),
``engine`` runs a comparison over one or many repositories, ``render``
writes text, JSON or HTML.
"""
