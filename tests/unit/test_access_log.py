"""The lean access logger writes the same line as gunicorn's own for the shipped format, plus a UTC time."""
import datetime
import logging
import re

from gunicorn.config import Config
from gunicorn.glogging import Logger

from registry_ext.gunicorn_setup import ACCESS_LOG_FORMAT, AccessLogger


class Resp:
    status = "200 OK"
    sent = 123
    headers = [("Content-Type", "application/json"), ("X-Request-ID", "rid-1"), ("Vary", "Accept")]


class Req:
    headers = [("HOST", "localhost"), ("USER-AGENT", "skopeo/1.13"), ("X-REQUEST-ID", "rid-1")]


ENVIRON = {"REQUEST_METHOD": "GET", "RAW_URI": "/v2/app/tags/list?n=10", "PATH_INFO": "/v2/app/tags/list",
           "QUERY_STRING": "n=10", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
           "HTTP_USER_AGENT": "skopeo/1.13"}


def line(logger_class, fmt=ACCESS_LOG_FORMAT, resp=Resp) -> str:
    cfg = Config()
    cfg.set("access_log_format", fmt)
    cfg.set("accesslog", "-")
    logger = logger_class(cfg)
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger.access_log.handlers = [handler]
    logger.access(resp, Req, ENVIRON, datetime.timedelta(milliseconds=7, microseconds=250))
    return records[0]


ISO_UTC_MS = re.compile(r"^time=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z ")


def test_the_shipped_format_is_written_exactly_as_gunicorn_writes_it():
    """gunicorn has no atom for an ISO 8601 UTC time: its own logger prints `time=-`."""
    ours = line(AccessLogger)
    stamp = ISO_UTC_MS.match(ours)
    assert stamp, ours
    written = datetime.datetime.fromisoformat(stamp.group(1)).replace(tzinfo=datetime.timezone.utc)
    assert abs((datetime.datetime.now(datetime.timezone.utc) - written).total_seconds()) < 5
    assert ours[stamp.end():] == line(Logger).removeprefix("time=- ")
    assert 'request="GET /v2/app/tags/list?n=10 HTTP/1.1" status=200 bytes=123 ms=7 rid=rid-1' in line(AccessLogger)


def test_a_missing_request_id_and_atoms_it_does_not_build_print_a_dash():
    class NoId(Resp):
        headers = [("Content-Type", "application/json")]

    assert "rid=-" in line(AccessLogger, resp=NoId)
    assert line(AccessLogger, fmt="%(t)s %({host}i)s %(m)s") == "- - GET"
