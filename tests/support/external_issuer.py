"""A second, external token issuer for the tests: its own key pair, its own users, its own HTTP endpoint.

It stands for an existing token service (docker_auth, Harbor's core, a
company SSO bridge): the registry never sees its users, only tokens signed
with its key, and accepts them only when that key is configured in
``auth.trusted_issuers``. Run alone it serves tokens on a port::

    python -m tests.support.external_issuer --port 5999 --service registry-ext --dir /tmp/issuer
"""
from __future__ import annotations

import argparse
import base64
import json
import secrets
import threading
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

ISSUER = "external-issuer.test"


class ExternalIssuer:
    """Signs tokens with its own RSA (RS256) or EC (ES256) key; grants what ``grants`` says."""

    def __init__(self, service: str, issuer: str = ISSUER, kind: str = "rsa", kid: str = "ext-key-1"):
        if kind == "rsa":
            self.key, self.algorithm = rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"
        else:
            self.key, self.algorithm = ec.generate_private_key(ec.SECP256R1()), "ES256"
        self.service, self.issuer, self.kid = service, issuer, kid
        self.users: dict[str, str] = {}
        self.grants: dict[str, dict[str, list[str]]] = {}  # user -> repository -> actions

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)

    def jwks(self) -> str:
        algorithm = jwt.algorithms.get_default_algorithms()[self.algorithm]
        jwk = json.loads(algorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=self.kid, use="sig", alg=self.algorithm)
        return json.dumps({"keys": [jwk]})

    def sign(self, claims: dict | None = None, *, subject: str = "ext-user", access: list | None = None,
             ttl: int = 300, headers: dict | None = None, **overrides) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "sub": subject, "aud": self.service, "iat": now, "nbf": now,
                "exp": now + ttl, "jti": secrets.token_hex(8), "access": access or []}
        body.update(claims or {})
        body.update(overrides)
        return jwt.encode({k: v for k, v in body.items() if v is not None}, self.key,
                          algorithm=self.algorithm, headers={"kid": self.kid, **(headers or {})})

    # -- its token endpoint ------------------------------------------------------------------------
    def wsgi(self, environ, start_response):
        request = Request(environ)
        user = None
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            name, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if self.users.get(name) != password:
                return Response('{"errors":[{"code":"UNAUTHORIZED"}]}', 401,
                                {"WWW-Authenticate": 'Basic realm="ext"'})(environ, start_response)
            user = name
        access = []
        for scope in " ".join(request.args.getlist("scope")).split():
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = self.grants.get(user or "", {}).get(name, [])
            granted = [a for a in actions.split(",") if a in allowed]
            if kind == "repository" and granted:
                access.append({"type": "repository", "name": name, "actions": granted})
        token = self.sign(subject=user or "", access=access)
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300})
        return Response(body, 200, content_type="application/json")(environ, start_response)

    def serve(self, port: int = 0):
        """Start the token endpoint on 127.0.0.1 in a thread; returns the server (``.port``, ``.shutdown()``)."""
        server = make_server("127.0.0.1", port, self.wsgi, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--service", default="registry-ext")
    parser.add_argument("--dir", required=True, help="where to write public.pem and jwks.json")
    parser.add_argument("--user", action="append", default=[], help="name:password:repository:actions")
    args = parser.parse_args()
    issuer = ExternalIssuer(args.service)
    for spec in args.user:
        name, password, repository, actions = spec.split(":", 3)
        issuer.users[name] = password
        issuer.grants.setdefault(name, {})[repository] = actions.split(",")
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "public.pem").write_bytes(issuer.public_pem())
    (folder / "jwks.json").write_text(issuer.jwks())
    make_server("127.0.0.1", args.port, issuer.wsgi, threaded=True).serve_forever()


if __name__ == "__main__":
    main()
