"""Property-based: whatever a caller passes (any Unicode, surrogates, controls, `../`, `%2F`, `?`, `#`, CR/LF),
each of the eleven operations, plain and through `with_raw_response`, either sends exactly the documented request
to the configured root, or raises `InvalidArgumentError` and sends nothing. No input moves the request to another
host, out of its own path segment, into a query or fragment, or puts CR/LF or non-ASCII in a header.

The requests are recorded by an `InMemoryTransport` handler (asyncio, via `anyio.run` in each example).
Examples: 100 per property in the bounded form, 2,000 under FOTA_STRESS=1.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote_plus, urlsplit

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fota_callbacks as fota
from fota_callbacks.testing import FakeThingSpace
from tests.support import figures
from tests.support.harness import STATIC_SESSION, STATIC_TOKEN, Recorder, client_on
from tests.support.operations import OPERATIONS, Operation
from tests.support.scale import scaled

pytestmark = pytest.mark.stress

ROOT = "https://fota.example.test:8443/gateway"
ROOT_PARTS = urlsplit(ROOT)
ACCOUNT = "0000123456-00001"
LISTENER = "https://listener.example.com/fota"
ACCOUNT_FORMAT = re.compile(r"[0-9]{10}-[0-9]{5}")
SURROGATE = re.compile("[\ud800-\udfff]")
UNSAFE_IN_URL = re.compile(r"[\x00-\x20\x7f-\x9f\s]")
VISIBLE_ASCII = re.compile(r"[\x20-\x7e]*")

PROPERTY_SETTINGS = settings(
    max_examples=scaled(100, 2000),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- inputs ---------------------------------------------------------------------------------------------------

PIECES = [
    "../",
    "..",
    "/",
    "%2F",
    "%2f",
    "%2e%2e%2f",
    "%00",
    "%0d%0a",
    "?",
    "?x=1",
    "#",
    "#frag",
    "\r\n",
    "\r",
    "\n",
    "\r\nX-Injected: 1",
    "\x00",
    "\x7f",
    "\x85",
    " ",
    "\t",
    "@",
    ":",
    "\\",
    "%",
    ";",
    "\u202e",
    "\ufeff",
    "\u2028",
    "\u00a0",
    "\ud800",
    "\udfff",
    "\uff10",  # FULLWIDTH DIGIT ZERO: a digit to str.isdigit(), not to [0-9]
    "\u0663",  # ARABIC-INDIC DIGIT THREE
    "é",
    "\U0001f600",
    "//evil.example",
    "https://evil.example/",
    "0000123456",
    "-00001",
    ACCOUNT,
    "Fota",
]

any_text = st.text(alphabet=st.characters(exclude_categories=()))  # every code point, lone surrogates included
hostile_text = st.one_of(
    any_text,
    st.lists(st.one_of(st.sampled_from(PIECES), any_text.filter(lambda s: len(s) <= 4)), max_size=8).map("".join),
)
visible_ascii = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)
credentials = st.one_of(hostile_text, visible_ascii)  # most hostile text is refused: valid ones must go through too
hostile_accounts = st.one_of(
    hostile_text,
    st.builds(lambda a, b: a + ACCOUNT + b, hostile_text, hostile_text),
    st.from_regex(ACCOUNT_FORMAT, fullmatch=True),  # valid ones: they must be sent
    st.integers(),
    st.none(),
    st.binary(max_size=20),
)
URL_PREFIXES = [
    "https://",
    "http://",
    "https://listener.example.com/",
    "HTTPS://a.example",
    "",
    "javascript:",
    "ftp://x/",
]
hostile_urls = st.one_of(
    hostile_text,
    st.builds(lambda prefix, rest: prefix + rest, st.sampled_from(URL_PREFIXES), hostile_text),
    st.builds(lambda rest: LISTENER + rest, hostile_text),
)

_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,12}[a-z0-9])?", fullmatch=True)
_hosts = st.one_of(
    st.lists(_label, min_size=1, max_size=4).map(".".join),
    st.ip_addresses(v=4).map(str),
)
_path_chars = st.one_of(
    st.sampled_from(list("abcXYZ019-._~!$&'()*+,;=:@/%")),
    st.characters(categories=["L", "N"]),  # non-ASCII letters and digits are fine in a callback URL
)
_paths = st.text(alphabet=_path_chars, max_size=40).map(lambda path: "/" + path)
valid_urls = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
    st.sampled_from(["https", "HTTPS"]),
    _hosts,
    st.one_of(st.just(""), st.integers(1, 65535).map(lambda port: f":{port}")),
    _paths,
)

# --- the recording transport ----------------------------------------------------------------------------------


def assert_clean_headers(request: fota.Request) -> None:
    for name, value in request.headers.raw():
        assert VISIBLE_ASCII.fullmatch(name), f"header name {name!r}"
        assert VISIBLE_ASCII.fullmatch(value), f"header {name}: {value!r} holds CR/LF, controls or non-ASCII"


def assert_documented_request(
    request: fota.Request,
    operation: Operation,
    account: str,
    *,
    url: str = LISTENER,
    username: str | None = None,
    password: str | None = None,
    root: str = ROOT,
) -> None:
    """`request` is exactly what wire.md documents for `operation` on `account`, sent under `root`."""
    parts, root_parts = urlsplit(request.url), urlsplit(root)
    assert (parts.scheme, parts.netloc) == (root_parts.scheme, root_parts.netloc), request.url
    assert parts.query == ""
    assert parts.fragment == ""
    assert "?" not in request.url
    assert "#" not in request.url
    assert request.url == root + operation.path(account), request.url
    assert request.method == operation.method
    assert_clean_headers(request)
    names = {name.lower() for name in request.headers}
    expected = {"accept", "user-agent", "authorization", "vz-m2m-token"}
    assert request.headers["Authorization"] == f"Bearer {STATIC_TOKEN}"
    assert request.headers["VZ-M2M-Token"] == STATIC_SESSION
    body = operation.json_body(url, username, password)
    if body is None:
        assert names == expected
        assert request.content == b""
    else:
        assert names == expected | {"content-type"}
        assert request.headers["Content-Type"] == "application/json"
        assert json.loads(request.content) == body


async def attempt(
    recorder: Recorder, client: fota.FotaCallbacksClient, operation: Operation, account: Any, **arguments: Any
) -> str:
    """Call `operation` on `account` with `arguments`; "sent" (exactly one request went out) or the parameter an
    `InvalidArgumentError` named (nothing went out)."""
    recorder.requests.clear()
    recorder.answer = operation.ok_body
    refused: fota.InvalidArgumentError | None = None
    try:
        await operation.call(client, account, **arguments)
    except fota.InvalidArgumentError as exc:
        refused = exc
    if refused is not None:
        assert recorder.requests == [], f"{operation.id}: refused ({refused}) but sent {recorder.requests}"
        return refused.parameter
    assert len(recorder.requests) == 1, recorder.requests
    return "sent"


def run(body: Callable[[], Awaitable[None]]) -> None:
    anyio.run(body, backend="asyncio")


def construct(make: Callable[[], fota.FotaCallbacksClient]) -> fota.FotaCallbacksClient | fota.InvalidArgumentError:
    """The client `make` makes, or the `InvalidArgumentError` it raises."""
    try:
        return make()
    except fota.InvalidArgumentError as exc:
        return exc


# --- properties -----------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(account=hostile_accounts)
def test_account_is_sent_in_its_own_segment_or_refused(account: Any) -> None:
    valid = isinstance(account, str) and ACCOUNT_FORMAT.fullmatch(account) is not None
    recorder = Recorder()
    outcomes: list[str] = []

    async def body() -> None:
        async with client_on(recorder, ROOT, max_retries=0) as client:
            for operation in OPERATIONS:
                for raw in (False, True):
                    outcome = await attempt(recorder, client, operation, account, raw=raw)
                    outcomes.append(outcome)
                    if valid:
                        assert outcome == "sent", f"{operation.id}: valid account {account!r} refused"
                        assert_documented_request(recorder.requests[0], operation, account)
                    else:
                        assert outcome == "account", f"{operation.id}: {account!r} -> {outcome}"

    run(body)
    figures.add(
        "properties: account (11 operations, plain and raw)",
        inputs=1,
        calls=len(outcomes),
        sent=outcomes.count("sent"),
        refused=len(outcomes) - outcomes.count("sent"),
    )


@PROPERTY_SETTINGS
@given(url=hostile_urls)
def test_callback_url_is_sent_verbatim_in_the_body_or_refused(url: str) -> None:
    recorder = Recorder()
    outcomes: list[str] = []

    async def body() -> None:
        async with client_on(recorder, ROOT, max_retries=0) as client:
            for operation in (op for op in OPERATIONS if op.takes_body):
                for raw in (False, True):
                    outcome = await attempt(recorder, client, operation, ACCOUNT, raw=raw, url=url)
                    outcomes.append(outcome)
                    if outcome != "sent":
                        assert outcome == "body.url", f"{operation.id}: {url!r} -> {outcome}"
                        continue
                    # Sent: then it is an absolute URL of an allowed scheme with a host and nothing unsafe in it.
                    schemes = ("http", "https") if operation.version == "v1" else ("https",)
                    parts = urlsplit(url)
                    assert parts.scheme.lower() in schemes, f"{operation.id} sent {url!r}"
                    assert parts.hostname, f"{operation.id} sent {url!r} (no host)"
                    assert not UNSAFE_IN_URL.search(url), f"{operation.id} sent {url!r} (controls or whitespace)"
                    assert not SURROGATE.search(url)
                    assert_documented_request(recorder.requests[0], operation, ACCOUNT, url=url)

    run(body)
    figures.add(
        "properties: callback url (5 operations, plain and raw)",
        inputs=1,
        calls=len(outcomes),
        sent=outcomes.count("sent"),
        refused=len(outcomes) - outcomes.count("sent"),
    )


@PROPERTY_SETTINGS
@given(url=valid_urls)
def test_every_valid_callback_url_is_sent(url: str) -> None:
    recorder = Recorder()

    async def body() -> None:
        async with client_on(recorder, ROOT, max_retries=0) as client:
            for operation in (op for op in OPERATIONS if op.takes_body):
                for raw in (False, True):
                    outcome = await attempt(recorder, client, operation, ACCOUNT, raw=raw, url=url)
                    assert outcome == "sent", f"{operation.id}: valid {url!r} refused ({outcome})"
                    assert_documented_request(recorder.requests[0], operation, ACCOUNT, url=url)

    run(body)
    figures.add("properties: valid callback url, all sent", inputs=1, calls=10)


@PROPERTY_SETTINGS
@given(username=st.one_of(st.none(), hostile_text), password=st.one_of(st.none(), hostile_text))
def test_v1_username_and_password_reach_the_body_intact_or_are_refused(
    username: str | None, password: str | None
) -> None:
    """Any text but a lone surrogate (not encodable as UTF-8) is sent, JSON-escaped, in the body only."""
    recorder = Recorder()
    register = next(op for op in OPERATIONS if op.id == "v1.register_callback")
    refused_for = None
    if username is not None and SURROGATE.search(username):
        refused_for = "body.username"
    elif password is not None and SURROGATE.search(password):
        refused_for = "body.password"

    async def body() -> None:
        async with client_on(recorder, ROOT, max_retries=0) as client:
            for raw in (False, True):
                outcome = await attempt(
                    recorder,
                    client,
                    register,
                    ACCOUNT,
                    raw=raw,
                    username=username,
                    password=password,
                )
                if refused_for is not None:
                    assert outcome == refused_for
                else:
                    assert outcome == "sent"
                    assert_documented_request(
                        recorder.requests[0], register, ACCOUNT, url=LISTENER, username=username, password=password
                    )

    run(body)
    figures.add("properties: v1 username/password", inputs=1, calls=2, refused=2 * (refused_for is not None))


@PROPERTY_SETTINGS
@given(service=st.one_of(hostile_text, st.sampled_from(["Fota", "fota", "FOTA", "Fota/../x", "Fota%2F", " Fota"])))
def test_v1_service_is_fota_or_refused(service: str) -> None:
    recorder = Recorder()
    deregister = next(op for op in OPERATIONS if op.takes_service)

    async def body() -> None:
        async with client_on(recorder, ROOT, max_retries=0) as client:
            for raw in (False, True):
                outcome = await attempt(recorder, client, deregister, ACCOUNT, raw=raw, service=service)
                if service == "Fota":
                    assert outcome == "sent"
                    assert_documented_request(recorder.requests[0], deregister, ACCOUNT)
                else:
                    assert outcome == "service", f"{service!r} -> {outcome}"

    run(body)
    figures.add("properties: v1 service", inputs=1, calls=2)


@PROPERTY_SETTINGS
@given(access_token=credentials, m2m_token=credentials)
def test_static_tokens_never_put_controls_or_non_ascii_in_a_header(access_token: str, m2m_token: str) -> None:
    recorder = Recorder()
    list_v2 = next(op for op in OPERATIONS if op.id == "v2.list_registered_callbacks")
    made = construct(
        lambda: fota.FotaCallbacksClient(
            base_url=ROOT, access_token=access_token, m2m_token=m2m_token, transport=fota.InMemoryTransport(recorder)
        )
    )
    if isinstance(made, fota.InvalidArgumentError):
        assert made.parameter in (
            "access_token",
            "m2m_token",
        )  # (secrets in messages: test_secrets.py)
        figures.add("properties: static tokens", inputs=1, refused=1)
        return
    client = made

    async def body() -> None:
        async with client:
            recorder.answer = list_v2.ok_body
            await list_v2.call(client, ACCOUNT)
        [request] = recorder.requests
        assert_clean_headers(request)
        assert request.headers["Authorization"] == f"Bearer {access_token}"
        assert request.headers["VZ-M2M-Token"] == m2m_token

    run(body)
    figures.add("properties: static tokens", inputs=1, sent=1)


@PROPERTY_SETTINGS
@given(client_id=credentials, client_secret=credentials, username=credentials, password=credentials)
def test_oauth_and_login_credentials_never_break_a_header(
    client_id: str, client_secret: str, username: str, password: str
) -> None:
    """Against the fake (which accepts any credentials): the client is refused at construction, or the token
    request, the login and the call all go out with clean headers, the Basic credentials and the login body
    carrying the values exactly."""
    fake = FakeThingSpace()
    made = construct(
        lambda: fake.client(client_id=client_id, client_secret=client_secret, username=username, password=password)
    )
    if isinstance(made, fota.InvalidArgumentError):
        assert made.parameter in ("client_id", "client_secret", "username", "password")
        figures.add("properties: OAuth and login credentials", inputs=1, refused=1)
        return
    client = made

    async def body() -> None:
        async with client:
            await client.v2.list_registered_callbacks(ACCOUNT)
        token, login, call = fake.requests
        for recorded in (token, login, call):
            request = fota.Request(recorded.method, recorded.url, recorded.headers, recorded.content)
            assert_clean_headers(request)
            assert urlsplit(recorded.url).netloc == "thingspace.fake.invalid"
        # RFC 6749 2.3.1: each half form-encoded, so a ":" in the id cannot move the split.
        basic = base64.b64encode(f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()).decode("ascii")
        assert token.headers["Authorization"] == f"Basic {basic}"
        assert login.json == {"username": username, "password": password}

    run(body)
    figures.add("properties: OAuth and login credentials", inputs=1, sent=1)


@PROPERTY_SETTINGS
@given(base_url=st.one_of(hostile_text, st.builds(lambda rest: "https://api.example.test" + rest, hostile_text)))
def test_base_url_is_the_only_root_requests_go_to(base_url: str) -> None:
    recorder = Recorder()
    list_v3 = next(op for op in OPERATIONS if op.id == "v3.list_registered_callbacks")
    made = construct(lambda: client_on(recorder, base_url))
    if isinstance(made, fota.InvalidArgumentError):
        assert made.parameter == "base_url"
        figures.add("properties: base_url", inputs=1, refused=1)
        return
    client = made

    async def body() -> None:
        async with client:
            recorder.answer = list_v3.ok_body
            await list_v3.call(client, ACCOUNT)
        [request] = recorder.requests
        assert_documented_request(request, list_v3, ACCOUNT, root=base_url.rstrip("/"))

    run(body)
    figures.add("properties: base_url", inputs=1, sent=1)


@pytest.mark.parametrize(
    "base_url",
    [
        pytest.param("https://api.example.test?", id="empty-query"),
        pytest.param("https://api.example.test#", id="empty-fragment"),
        pytest.param("http://0#", id="empty-fragment-short"),
    ],
)
def test_base_url_with_a_bare_query_or_fragment_is_refused(base_url: str) -> None:
    with pytest.raises(fota.InvalidArgumentError) as info:
        client_on(Recorder(), base_url)
    assert info.value.parameter == "base_url"


@pytest.mark.parametrize(
    "base_url",
    [
        pytest.param("http://\x7f.example", id="DEL-in-host"),
        pytest.param("http://ex\u200bample.com", id="zero-width-space-in-host"),
        pytest.param("http://127.0.0.1:99999", id="port-out-of-range"),
    ],
)
def test_base_url_that_cannot_be_requested_is_refused(base_url: str) -> None:
    with pytest.raises(fota.InvalidArgumentError) as info:
        client_on(Recorder(), base_url)
    assert info.value.parameter == "base_url"
