"""THE table of callback requests: for each, the exact answer and what the handler or inbox got, the same through
every way in (tests/receiving/ways.py: the core's `receive` and `receive_stream`, `callback_app` in-process, alone
under uvicorn and mounted in Starlette, FastAPI's `callback_router` on its direct path and on FastAPI's own,
aiohttp.web's `callback_handler`, Django's `callback_view`, and `fota-callbacks listen`).

Where a way cannot give the table's answer, the case says so for that way and why (`Deviation`): its own
answer (`answers`), or nothing to run (`answers=None`: the way has no such configuration). Every other way must
give exactly the table's answers.

Bodies carry `NONCE`, replaced by a fresh token of the same length in each test, so that a server shared by a
module's tests (and its inbox, which deduplicates) sees each case's bodies for the first time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from fota_callbacks.receiver import DEFAULT_MAX_BODY_SIZE

NONCE = "NONCE-00"
"""8 characters in every body, replaced per test by a fresh token of the same length."""

USERNAME = "listener"
PASSWORD = "s3cret-echo"
LIMIT = DEFAULT_MAX_BODY_SIZE


# --- the receivers the cases are posted to ---------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A receiver configuration: `CallbackReceiver(handler or inbox, **options)`. `handler`: a recording one, or
    one that records then raises; `inbox`: a `MemoryInbox` that records its puts, or one whose store refuses."""

    handler: Literal["recorder", "failing"] | None = "recorder"
    inbox: Literal["memory", "unavailable"] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


ENDPOINTS: dict[str, Endpoint] = {
    "open": Endpoint(),
    "checked": Endpoint(options={"username": USERNAME, "password": PASSWORD}),
    "verizon-only": Endpoint(options={"allowed_ips": "verizon"}),
    "loopback-only": Endpoint(options={"allowed_ips": ["127.0.0.0/8"]}),
    "inbox": Endpoint(handler=None, inbox="memory"),
    "unavailable-inbox": Endpoint(handler=None, inbox="unavailable"),
    "failing": Endpoint(handler="failing"),
    "background": Endpoint(options={"background": True}),
}


# --- requests and answers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One request. `chunks=0`: the body in one piece with its Content-Length; `chunks=N`: N pieces with
    `Transfer-Encoding: chunked` and no Content-Length (the core's `receive_stream` gets them as N chunks and no
    length; `receive` gets the joined body). Servers report a local client as 127.0.0.1: so does `peer`."""

    body: bytes
    method: str = "POST"
    content_type: str | None = "application/json"
    chunks: int = 0
    peer: str = "127.0.0.1"


@dataclass(frozen=True)
class Answer:
    """The exact answer: status, JSON body (or `text` for a framework's own plain-text page), and the
    Content-Type and Allow headers."""

    status: int
    json: Any = None
    text: str | None = None
    content_type: str = "application/json"
    allow: str | None = None


@dataclass(frozen=True)
class Deviation:
    """How one way departs from the table for one case, and why. `answers=None`: the case cannot be posted that
    way (the way has no such receiver); else the way's own answers, what the handler and inbox got unchanged."""

    why: str
    answers: tuple[Answer, ...] | None = None


@dataclass(frozen=True)
class Case:
    """`requests` posted in order to `endpoint`, each answered with the matching `answers`; then the handler has
    the messages of the requests at `handled` (indexes, in order) and the inbox was asked to store the bodies at
    `stored` (index and how the put ended). `deviations`: way name -> `Deviation`."""

    id: str
    endpoint: str
    requests: tuple[Request, ...]
    answers: tuple[Answer, ...]
    handled: tuple[int, ...] = ()
    stored: tuple[tuple[int, Literal["stored", "duplicate", "failed"]], ...] = ()
    deviations: Mapping[str, Deviation] = field(default_factory=dict)


def message(**fields: Any) -> bytes:
    """An upgradeProgress message as ThingSpace sends it (V1 shape, no credentials unless given), with `NONCE`."""
    data = {
        "accountName": "0000123456-00001",
        "participantName": "",
        "type": "upgradeProgress",
        "username": "",
        "password": "",
        "firmwareList": [],
        "upgradeScheduled": {"upgradeId": f"u-{NONCE}", "firmwareName": "FW-2"},
        "nonce": NONCE,
        **fields,
    }
    return json.dumps(data, separators=(",", ":")).encode()


def message_of_size(size: int) -> bytes:
    """A valid message of exactly `size` bytes (padded with a `padding` string)."""
    bare = message(padding="")
    return message(padding="x" * (size - len(bare)))


def _refused(status: int, error: str, detail: str) -> tuple[Answer]:
    return (Answer(status, {"error": error, "detail": detail}),)


OK = Answer(200, {"status": "ok"})
TOO_LARGE = _refused(413, "too_large", f"callback bodies are limited to {LIMIT} bytes")
UNAUTHORIZED = _refused(401, "unauthorized", "wrong or missing username/password in the message")


def _malformed(detail: str) -> tuple[Answer]:
    return _refused(400, "malformed_callback", detail)


# Why some ways cannot take some cases.
_CORE_GETS_A_POST = Deviation("the core is handed a POST: which method a path takes is the adapter's routing")
_LISTEN_HAS_NO = "`fota-callbacks listen` has no {what}: its receiver is the open or the --username/--password one"
_AIOHTTP_405 = Answer(405, text="405: Method Not Allowed", content_type="text/plain; charset=utf-8", allow="POST")
_AIOHTTP_OWN_405 = Deviation(
    "registered with add_post (as documented), aiohttp's router answers another method itself before any handler "
    "runs; registered with add_route('*', ...) the handler gives the table's answer (test_aiohttp.py)",
    (_AIOHTTP_405, _AIOHTTP_405),
)


def _listen_lacks(what: str) -> Mapping[str, Deviation]:
    return {"listen": Deviation(_LISTEN_HAS_NO.format(what=what))}


CASES: tuple[Case, ...] = (
    Case("a message", "open", (Request(message()),), (OK,), handled=(0,)),
    Case(
        "any content type",  # ThingSpace's Content-Type is not insisted on
        "open",
        (Request(message(), content_type="text/plain"), Request(message(type="upgradeFinished"), content_type=None)),
        (OK, OK),
        handled=(0, 1),
    ),
    Case("a chunked body", "open", (Request(message(), chunks=3),), (OK,), handled=(0,)),
    Case("a body of exactly the limit", "open", (Request(message_of_size(LIMIT)),), (OK,), handled=(0,)),
    Case("over the limit, with Content-Length", "open", (Request(message_of_size(LIMIT + 1)),), TOO_LARGE),
    Case("over the limit, chunked", "open", (Request(message_of_size(LIMIT + 1), chunks=4),), TOO_LARGE),
    Case("far over the limit, chunked", "open", (Request(message_of_size(3 * LIMIT), chunks=48),), TOO_LARGE),
    Case(
        "an empty body",
        "open",
        (Request(b""),),
        _malformed("callback body is not JSON: Expecting value (line 1, column 1)"),
    ),
    Case(
        "malformed JSON",
        "open",
        (Request(b'{"type": "upgradeProgress",'),),
        _malformed("callback body is not JSON: Expecting property name enclosed in double quotes (line 1, column 28)"),
    ),
    Case(
        "not UTF-8",
        "open",
        (Request(b"\xff\xfe{}"),),
        _malformed("callback body is not UTF-8 (invalid byte at offset 0)"),
    ),
    Case("not an object", "open", (Request(b"[1, 2]"),), _malformed("callback body is an array, not a JSON object")),
    Case(
        "NaN",
        "open",
        (Request(b'{"type": "upgradeProgress", "n": NaN}'),),
        _malformed("callback body is not standard JSON: NaN is not JSON"),
    ),
    Case(
        "the right credentials",
        "checked",
        (Request(message(username=USERNAME, password=PASSWORD)),),
        (OK,),
        handled=(0,),
    ),
    Case("a wrong password", "checked", (Request(message(username=USERNAME, password="wrong")),), UNAUTHORIZED),
    Case("a wrong username", "checked", (Request(message(username="someone", password=PASSWORD)),), UNAUTHORIZED),
    Case("no credentials", "checked", (Request(message()),), UNAUTHORIZED),
    Case(
        "credentials that are not strings",
        "checked",
        (Request(message(username=7, password=None)),),
        UNAUTHORIZED,
    ),
    Case(
        "a disallowed peer",
        "verizon-only",
        (Request(message()),),
        _refused(403, "forbidden", "this address may not send callback messages"),
        deviations=_listen_lacks("--allowed-ips"),
    ),
    Case(
        "a disallowed peer sending garbage",  # the source is checked first: nothing of the body matters
        "verizon-only",
        (Request(b"not json" * 10, chunks=2),),
        _refused(403, "forbidden", "this address may not send callback messages"),
        deviations=_listen_lacks("--allowed-ips"),
    ),
    Case(
        "an allowed peer",
        "loopback-only",
        (Request(message()),),
        (OK,),
        handled=(0,),
        deviations=_listen_lacks("--allowed-ips"),
    ),
    Case(
        "stored in the inbox",
        "inbox",
        (Request(message()),),
        (OK,),
        stored=((0, "stored"),),
        deviations=_listen_lacks("inbox"),
    ),
    Case(
        "a duplicate",  # the sender's retry of a message whose answer it never saw: acknowledged, stored once
        "inbox",
        (Request(message()), Request(message())),
        (OK, OK),
        stored=((0, "stored"), (1, "duplicate")),
        deviations=_listen_lacks("inbox"),
    ),
    Case(
        "a malformed body with an inbox",
        "inbox",
        (Request(b"[]"),),
        _malformed("callback body is an array, not a JSON object"),
        deviations=_listen_lacks("inbox"),
    ),
    Case(
        "an inbox that cannot store",
        "unavailable-inbox",
        (Request(message()),),
        _refused(503, "unavailable", "the callback could not be stored; retry later"),
        stored=((0, "failed"),),
        deviations=_listen_lacks("inbox"),
    ),
    Case(
        "a handler that raises",
        "failing",
        (Request(message()),),
        _refused(500, "internal_error", "the callback could not be processed"),
        handled=(0,),
        deviations=_listen_lacks("handler of yours"),
    ),
    Case(
        "background handling",
        "background",
        (Request(message()),),
        (Answer(202, {"status": "accepted"}),),
        handled=(0,),
        deviations={
            **_listen_lacks("background mode"),
            "django": Deviation("Django runs nothing after a view's answer: callback_view refuses background=True"),
        },
    ),
    Case(
        "another method",
        "open",
        (Request(b"", method="GET", content_type=None), Request(message(), method="PUT")),
        (
            Answer(405, {"error": "method_not_allowed", "detail": "use POST"}, allow="POST"),
            Answer(405, {"error": "method_not_allowed", "detail": "use POST"}, allow="POST"),
        ),
        deviations={
            "receive": _CORE_GETS_A_POST,
            "receive_stream": _CORE_GETS_A_POST,
            "aiohttp": _AIOHTTP_OWN_405,
        },
    ),
)
