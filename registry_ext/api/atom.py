"""Atom feeds of tag updates (RFC 4287), for people and feed readers (docs/updates.md#atom).

``GET /v2/<name>/_regext/feed.atom``: the repository's newest new tags and
tag moves, newest first, from its own event stream (the last
``feed.recent_per_repo``). ``GET /v2/_regext/feed.atom`` with
``repository``, ``prefix`` or ``glob``: the same across repositories, from
the update feed (the newest ``n`` matching events among at most
``feed.scan_max`` examined). Deletes are left out (``deleted=true`` keeps
them). An entry's id is derived from the event's bytes, so one event has
one id in every feed that shows it.
"""
from __future__ import annotations

import hashlib
import re
from xml.sax.saxutils import escape, quoteattr

import orjson
from flask import Blueprint, current_app, request

from registry_ext.api.feed import may_pull
from registry_ext.api.http import Response, conditional, query_int, registry
from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.oci import repo_filter
from registry_ext.oci.repo_filter import RepoFilterError

bp = Blueprint("atom", __name__)
# Characters XML 1.0 does not allow even escaped (controls, surrogates, U+FFFE/F): dropped from text a
# request supplied (a prefix in the title, the query in the self link).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
ATOM = "application/atom+xml; charset=utf-8"
DEFAULT_ENTRIES = 50
NO_TIME = "1970-01-01T00:00:00.000Z"


@bp.get("/<repo:name>/_regext/feed.atom")
def repository_feed(name: str):
    reg, settings = registry(), _settings()
    if not reg.index.read.repo_exists(name) or not may_pull()(name):
        raise RegistryError(ErrorCode.NAME_UNKNOWN, {"name": name})
    wanted = _wanted_actions()
    found = [e for e in reg.feed.repo_newest(name, settings.recent_per_repo) if _action(e) in wanted]
    return _atom(f"repository:{name}", f"{name}: tag updates", found[:_count(settings.recent_per_repo)])


@bp.get("/_regext/feed.atom")
def repositories_feed():
    settings = _settings()
    args = request.args
    names = args.getlist("repository")
    try:
        flt = repo_filter.build(names or None, args.get("prefix"), args.get("glob"), settings.max_repositories)
    except RepoFilterError as exc:
        raise RegistryError(ErrorCode.UNSUPPORTED, {"parameter": exc.parameter}, message=str(exc)) from None
    wanted, count = _wanted_actions(), _count(settings.page_max)
    newest = registry().feed.newest(flt, settings.page_max, may_pull())
    found = [data for data in newest if _action(data) in wanted][:count]
    title = "tag updates of " + (", ".join(f"{k}={v}" for k, v in flt.spec().items() if k != "repositories")
                                 or "every repository")
    return _atom("query:" + hashlib.sha256(orjson.dumps(flt.spec(), option=orjson.OPT_SORT_KEYS)).hexdigest()[:16],
                 title, found)


def _settings():
    settings = current_app.config["SETTINGS"].feed
    if not settings.enabled:
        raise RegistryError(ErrorCode.UNSUPPORTED, status=404, message="the update feed is disabled")
    return settings


def _count(maximum: int) -> int:
    asked = query_int("n")
    return max(1, min(DEFAULT_ENTRIES if asked is None else asked, maximum))


def _wanted_actions() -> set[str]:
    return {"pushed", "moved", "deleted"} if request.args.get("deleted") == "true" else {"pushed", "moved"}


def _action(data: str) -> str:
    return orjson.loads(data)["action"]


def _atom(key: str, title: str, found: list[str]) -> Response:
    """The feed document; ``found`` are event JSON strings, newest first."""
    identity = registry().feed.identity.id.hex()
    base = request.host_url.rstrip("/")
    docs = [orjson.loads(data) for data in found]
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">',
             f"<id>urn:regext:{identity}:{escape(key)}</id>", f"<title>{escape(_xml(title))}</title>",
             f"<updated>{docs[0]['time'] if docs else NO_TIME}</updated>",
             f"<link rel=\"self\" href={quoteattr(_xml(base + request.full_path.rstrip('?')))}/>",
             "<author><name>registry-ext</name></author>", "<generator>registry-ext</generator>"]
    for data, doc in zip(found, docs):
        parts.append(_entry(identity, base, data, doc))
    parts.append("</feed>\n")
    return conditional(Response("\n".join(parts).encode(), content_type=ATOM))


def _xml(text: str) -> str:
    return _NOT_XML.sub("", text)


def _entry(identity: str, base: str, data: str, doc: dict) -> str:
    repo, tag, action = doc["repository"], doc["tag"], doc["action"]
    digest = doc["digest"] or doc["previous"]
    short = digest.split(":", 1)[1][:12]
    verb = {"pushed": "pushed", "moved": "moved to", "deleted": "deleted, was"}[action]
    summary = f"{repo}:{tag} {action}: now {doc['digest'] or 'gone'}"
    if doc["previous"]:
        summary += f" (before: {doc['previous']})"
    summary += f"; media type {doc['mediaType']}"
    if doc.get("artifactType"):
        summary += f", artifact type {doc['artifactType']}"
    return "\n".join([
        "<entry>",
        f"<id>urn:regext:{identity}:event:{hashlib.sha256(data.encode()).hexdigest()[:32]}</id>",
        f"<title>{escape(f'{repo}:{tag} {verb} {short}')}</title>",
        f"<updated>{doc['time']}</updated>",
        f"<link rel=\"alternate\" href={quoteattr(f'{base}/v2/{repo}/manifests/{digest}')}/>",
        f"<category term={quoteattr(action)}/>",
        f"<summary type=\"text\">{escape(summary)}</summary>",
        "</entry>"])
