"""`fota-callbacks doctor URL`: check a listener URL the way ThingSpace will use it, before registering it.

A bad URL registered over a good one stops every callback (V1 register replaces the previous listener), and
nothing tells the user. So each point ThingSpace depends on is checked, one line each, with what to fix.

Nothing ThingSpace-shaped is sent: the only request is one `GET` without a body (ThingSpace POSTs its messages,
so a callback receiver does not store or handle it: the FastAPI router answers 405); the certificate checks are
handshakes alone.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import socket
import ssl
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import attrs

from .._constants import CERTIFICATE_RENEWAL_DAYS, DOCTOR_ANSWER_WITHIN, THINGSPACE_DELIVERY_PORTS
from .._errors import InvalidArgumentError
from .._validation import check_callback_url, mask_userinfo
from .._version import __version__
from ._common import OK, REFUSED, USAGE, CliError, Output, add_command, escape
from ._tls_probe import (
    NAME_MISMATCH,
    SELF_SIGNED,
    UNKNOWN_ISSUER,
    CertificateFacts,
    Peer,
    examine_certificate,
    handshake,
    unverified,
)

__all__ = ["Check", "add_parser", "examine"]

Status = Literal["pass", "flag", "fail"]
Note = Callable[[str], None]

USER_AGENT = f"fota-callbacks-doctor/{__version__}"
_WITHIN = DOCTOR_ANSWER_WITHIN
_STATUS_LINE = re.compile(rb"HTTP/\d(?:\.\d)? (\d{3})(?: ([^\r\n]*))?")
_HEAD_LIMIT = 8192


@attrs.frozen
class Check:
    """One point checked: `pass`, `flag` (a warning: ThingSpace may still deliver) or `fail`, and what to do."""

    name: str
    status: Status
    detail: str


@attrs.frozen
class _Target:
    """The URL as the checks use it: `host` without brackets and IDNA-encoded, `authority` for the Host header,
    `resource` the request target (path and query)."""

    scheme: str
    host: str
    port: int
    authority: str
    resource: str


def add_parser(commands: Any) -> None:
    sub = add_command(commands, "doctor", run, verbose="each connection and handshake")
    sub.add_argument("url", metavar="URL", help="the listener URL you mean to register")
    sub.add_argument(
        "--version", choices=("1", "2", "3"), default="3", help="the callbacks version to register it with (default 3)"
    )
    sub.add_argument("--json", action="store_true", help="print one JSON object: url, ok and the checks")
    sub.add_argument("--ca", metavar="FILE", help="also trust this CA certificate (PEM): a private CA, for tests")


def run(args: argparse.Namespace, output: Output) -> int:
    """check a listener URL the way ThingSpace will use it, before registering it

    One line per check, with what to fix: an absolute URL, https:// for V2 and V3, a port ThingSpace delivers
    to, a name that resolves to a public address, a connection, a TLS certificate that chains to a public CA,
    is valid for the name and does not expire within 14 days, and an answer to an HTTP request within 5 s
    (one GET without a body: a callback receiver neither stores nor handles it). A flagged check (address,
    port) is a warning; exit 0 when no check failed, 1 otherwise.
    """
    trusted = _trusted(args.ca)
    note: Note = output.note if args.verbose else (lambda text: None)
    checks = examine(args.url, int(args.version), trusted, note)
    ok = all(check.status != "fail" for check in checks)
    if args.json:
        shown = mask_userinfo(args.url)  # a password in the URL is not printed back
        output.line(json.dumps({"url": shown, "ok": ok, "checks": [attrs.asdict(check) for check in checks]}))
    else:
        width = max(len(check.name) for check in checks)
        for check in checks:
            output.line(escape(f"{check.status:<4}  {check.name:<{width}}  {check.detail}"))
        output.line(_summary(checks))
    return OK if ok else REFUSED  # 1: a check failed


def _trusted(ca: str | None) -> ssl.SSLContext:
    """Verification as ThingSpace's client does it: the public CAs (Mozilla's list, as certifi has it and the
    SDK's httpx uses; this machine's own store without certifi), plus `--ca`; the name checked."""
    try:
        import certifi  # installed with httpx
    except ImportError:  # pragma: no cover - httpx requires it
        context = ssl.create_default_context()
    else:
        context = ssl.create_default_context(cafile=certifi.where())
    if ca is not None:
        try:
            context.load_verify_locations(cafile=ca)
        except (OSError, ssl.SSLError) as exc:
            raise CliError(USAGE, f"--ca: cannot load {ca!r} as a PEM CA certificate ({_reason(exc)})") from None
    return context


def _summary(checks: list[Check]) -> str:
    failed = [check.name for check in checks if check.status == "fail"]
    flagged = [check.name for check in checks if check.status == "flag"]
    if failed:
        return f"{len(failed)} failed ({', '.join(failed)}): ThingSpace cannot deliver here; fix them, then register"
    if flagged:
        return f"none failed, {len(flagged)} flagged ({', '.join(flagged)}): fine for tests; fix them for ThingSpace"
    return "every check passed"


def examine(url: str, version: int, trusted: ssl.SSLContext, note: Note) -> list[Check]:
    """Every check that applies to `url` as a listener of callbacks `version`, in order. A check that fails
    ends the ones that need it (no address: no connection; no connection: no handshake or answer)."""
    checks: list[Check] = []
    target = _target(url, checks)
    if target is None:
        return checks
    checks.append(_scheme(target, version))
    checks.append(_port(target))
    addresses = _resolve(target, checks)
    if not addresses:
        return checks
    checks.append(_public(addresses))
    peer = _connect(target, addresses, checks, note)
    if peer is None:
        return checks
    if target.scheme == "http":
        note(f"GET {target.resource} on {_where(peer.address, peer.port)}")
        try:
            with socket.create_connection((peer.address, peer.port), timeout=_WITHIN) as plain:
                checks.append(_ask(plain, target))
        except OSError as exc:
            checks.append(Check("answer", "fail", f"no connection to ask for an answer: {_reason(exc)}"))
    else:
        checks.extend(_over_tls(peer, target, trusted, note))
    return checks


# --- the URL --------------------------------------------------------------------------------------------------


def _target(url: str, checks: list[Check]) -> _Target | None:
    try:
        check_callback_url(url, ("http", "https"), "URL")
        parts = urlsplit(url)
        host = (parts.hostname or "").encode("idna").decode("ascii")
        port = parts.port
    except InvalidArgumentError as exc:
        checks.append(Check("url", "fail", f"{exc.problem}: give the full URL ThingSpace will POST to"))
        return None
    except UnicodeError:
        checks.append(Check("url", "fail", f"{parts.hostname!r} is not a valid host name"))
        return None
    if port == 0:
        checks.append(Check("url", "fail", "port 0 is not a port a listener can be reached on: give the real one"))
        return None
    scheme = parts.scheme.lower()
    authority = (f"[{host}]" if ":" in host else host) + (f":{port}" if port is not None else "")
    resource = quote(parts.path or "/", safe="/%!$&'()*+,;=:@-._~") + (f"?{parts.query}" if parts.query else "")
    port = port if port is not None else 443 if scheme == "https" else 80
    checks.append(Check("url", "pass", f"an absolute {scheme}:// URL: host {host}, port {port}"))
    return _Target(scheme, host, port, authority, resource)


def _scheme(target: _Target, version: int) -> Check:
    if target.scheme == "https":
        return Check("scheme", "pass", f"https://, as V{version} {'requires' if version > 1 else 'accepts'}")
    if version == 1:
        detail = "http://, which V1 accepts (messages, with the password ThingSpace echoes, then travel unencrypted)"
        return Check("scheme", "pass", detail)
    return Check(
        "scheme",
        "fail",
        f"V{version} registers only https:// URLs: serve the listener over TLS with a certificate from a public CA",
    )


def _port(target: _Target) -> Check:
    if target.port in THINGSPACE_DELIVERY_PORTS:
        return Check("port", "pass", f"{target.port} is a port ThingSpace delivers callbacks to")
    return Check(
        "port",
        "flag",
        f"{target.port} is not among the ports ThingSpace is published to deliver callbacks to (80, 443, "
        "9001-9006, 28200-28220, 50551-50559, for Connectivity Management; not confirmed for FOTA): prefer 443",
    )


# --- the address ----------------------------------------------------------------------------------------------


def _resolve(target: _Target, checks: list[Check]) -> list[str]:
    host = target.host
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        checks.append(Check("resolve", "pass", f"{host} is an address: nothing to resolve"))
        return [host]
    try:
        found = socket.getaddrinfo(host, target.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        detail = f"{host} does not resolve ({_reason(exc)}): publish a DNS record for it, ThingSpace looks it up"
        checks.append(Check("resolve", "fail", detail))
        return []
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    checks.append(Check("resolve", "pass", f"{host} resolves to {', '.join(addresses)}"))
    return addresses


def _kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    for kind in ("loopback", "private", "link_local", "multicast", "unspecified", "reserved"):
        if getattr(address, f"is_{kind}"):
            return f"a {kind.replace('_', '-')}"
    return "not a public"


def _public(addresses: list[str]) -> Check:
    inner = [(text, ipaddress.ip_address(text)) for text in addresses]
    hidden = [f"{text} is {_kind(address)} address" for text, address in inner if not address.is_global]
    if not hidden:
        return Check("address", "pass", f"public: {', '.join(addresses)}")
    return Check(
        "address",
        "flag",
        f"{'; '.join(hidden)}: ThingSpace delivers from the internet and cannot reach it; register a public "
        "address (a reverse proxy or a tunnel in front of a local listener)",
    )


def _connect(target: _Target, addresses: list[str], checks: list[Check], note: Note) -> Peer | None:
    failures = []
    for address in addresses:
        note(f"connecting to {_where(address, target.port)}")
        try:
            socket.create_connection((address, target.port), timeout=_WITHIN).close()
        except OSError as exc:
            failures.append(f"{_where(address, target.port)} ({_reason(exc)})")
            continue
        checks.append(Check("connect", "pass", f"{_where(address, target.port)} accepts connections"))
        return Peer(address, target.port, target.host, _WITHIN)
    detail = f"no connection to {'; '.join(failures)}: start the listener, or open port {target.port} to it"
    checks.append(Check("connect", "fail", detail))
    return None


# --- TLS and the answer ---------------------------------------------------------------------------------------


def _over_tls(peer: Peer, target: _Target, trusted: ssl.SSLContext, note: Note) -> list[Check]:
    where = _where(peer.address, peer.port)
    note(f"TLS handshake with {where}, then GET {target.resource}")
    try:
        with handshake(peer, unverified()) as tls:
            leaf = tls.getpeercert(binary_form=True)
            shook = Check("tls", "pass", f"{tls.version()} handshake with {where}")
            answer = _ask(tls, target)
    except OSError as exc:  # ssl.SSLError included
        detail = f"no TLS handshake with {where} ({_reason(exc)}): serve TLS on this port"
        return [Check("tls", "fail", detail)]
    if not leaf:
        return [shook, Check("certificate", "fail", "the server presented no certificate"), answer]
    note(f"verifying the certificate of {where} as ThingSpace would")
    try:
        facts = examine_certificate(peer, leaf, trusted)
    except OSError as exc:
        return [shook, Check("certificate", "fail", f"could not be verified ({_reason(exc)})"), answer]
    return [shook, *_certificate(facts, target.host), answer]


def _certificate(facts: CertificateFacts, host: str) -> list[Check]:
    if facts.chain is None:
        chain = Check("certificate", "pass", f"chains to a trusted CA{_issuer(facts.certificate)}")
    elif facts.chain.code in SELF_SIGNED:
        detail = "self-signed: ThingSpace refuses self-signed certificates; get one from a public CA (Let's Encrypt)"
        chain = Check("certificate", "fail", detail)
    elif facts.chain.code in UNKNOWN_ISSUER:
        detail = (
            f"does not chain to a public CA ({facts.chain.message}): use a certificate from a public CA and serve "
            "its intermediate certificates with it"
        )
        chain = Check("certificate", "fail", detail)
    else:
        chain = Check("certificate", "fail", f"refused ({facts.chain.message}): ThingSpace would refuse it too")
    if facts.name is None:
        name = Check("hostname", "pass", f"valid for {host}")
    elif facts.name.code in NAME_MISMATCH:
        name = Check("hostname", "fail", f"not valid for {host}: get a certificate that names {host}")
    else:
        name = Check("hostname", "fail", f"could not be checked ({facts.name.message})")
    return [chain, name, _expiry(facts)]


def _issuer(certificate: dict[str, Any] | None) -> str:
    fields = {key: value for entry in (certificate or {}).get("issuer", ()) for key, value in entry}
    issuer = fields.get("organizationName") or fields.get("commonName")
    return f" (issued by {issuer})" if issuer else ""


def _expiry(facts: CertificateFacts) -> Check:
    if facts.dates is not None:
        if facts.dates.code == 9:
            return Check("expiry", "fail", "not valid yet: check the certificate's dates and the server's clock")
        return Check("expiry", "fail", f"{facts.dates.message}: renew the certificate")
    if facts.certificate is None or "notAfter" not in facts.certificate:
        return Check("expiry", "fail", "the certificate's dates could not be read")
    ends = ssl.cert_time_to_seconds(facts.certificate["notAfter"])
    days = int((ends - time.time()) // 86400)
    day = datetime.fromtimestamp(ends, timezone.utc).date().isoformat()
    if days < CERTIFICATE_RENEWAL_DAYS:
        return Check(
            "expiry",
            "fail",
            f"expires in {days} days ({day}): renew it now; ThingSpace checks the certificate at the start of "
            "every session",
        )
    return Check("expiry", "pass", f"valid until {day} ({days} days)")


def _ask(sock: socket.socket, target: _Target) -> Check:
    """Send one GET without a body and wait `_WITHIN` seconds for the status line."""
    request = (
        f"GET {target.resource} HTTP/1.1\r\nHost: {target.authority}\r\nUser-Agent: {USER_AGENT}\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    )
    started = time.monotonic()
    try:
        sock.settimeout(_WITHIN)
        sock.sendall(request.encode("ascii"))
        head = _status_line(sock, started + _WITHIN)
    except TimeoutError:
        detail = (
            f"no answer to GET {target.resource} within {_WITHIN:g} s: the port accepts connections but nothing "
            "answers; check that the listener serves HTTP there and is not stuck"
        )
        return Check("answer", "fail", detail)
    except OSError as exc:
        return Check("answer", "fail", f"no answer to GET {target.resource} ({_reason(exc)})")
    status = _STATUS_LINE.match(head)
    if status is None:
        return Check("answer", "fail", f"the answer to GET {target.resource} is not HTTP: {head[:60]!r}")
    reason = status[2].decode("latin-1") if status[2] else ""
    elapsed = time.monotonic() - started
    answered = f"HTTP {int(status[1])}{f' {reason}' if reason else ''}"
    return Check("answer", "pass", f"{answered} to GET {target.resource} in {elapsed:.2f} s (any status will do)")


def _status_line(sock: socket.socket, deadline: float) -> bytes:
    """The first line of the answer, read before `deadline` (monotonic): `TimeoutError` after it."""
    data = b""
    while b"\n" not in data and len(data) < _HEAD_LIMIT:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        chunk = sock.recv(4096)
        if not chunk:
            if not data:
                raise ConnectionResetError("the connection was closed without an answer")
            break
        data += chunk
    return data.split(b"\n", 1)[0].rstrip(b"\r")


def _where(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _reason(exc: OSError) -> str:
    """An `OSError` in a user's terms."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: nothing listens there"
    if isinstance(exc, TimeoutError):
        return f"nothing within {_WITHIN:g} s"
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, socket.gaierror):
        return exc.strerror or str(exc)
    return exc.strerror or str(exc) or type(exc).__name__
