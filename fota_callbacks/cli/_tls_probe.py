"""What a TLS client such as ThingSpace's makes of a listener's certificate, point by point, for `doctor`.

OpenSSL reports only the first problem it meets while verifying: the chain (self-signed, unknown CA), then the
name, then the dates. To judge each point, the certificate is verified on fresh connections: first as ThingSpace
would (the public CAs, plus `--ca`); when that fails, with the server's own certificate as
the only trust anchor and the name checked (which leaves the name and the dates to judge); and when the name
fails too, without it (which leaves the dates). Nothing but handshakes is sent.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

import attrs

__all__ = ["CertificateFacts", "Peer", "Verification", "examine_certificate", "handshake", "unverified"]

# OpenSSL's X509_V_ERR_* codes, as `SSLCertVerificationError.verify_code` gives them.
NAME_MISMATCH = frozenset({62, 64})  # HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH
OUT_OF_DATE = frozenset({9, 10})  # CERT_NOT_YET_VALID, CERT_HAS_EXPIRED
SELF_SIGNED = frozenset({18, 19})  # DEPTH_ZERO_SELF_SIGNED_CERT, SELF_SIGNED_CERT_IN_CHAIN
UNKNOWN_ISSUER = frozenset({2, 20, 21})  # UNABLE_TO_GET_ISSUER_CERT(_LOCALLY), UNABLE_TO_VERIFY_LEAF_SIGNATURE


@attrs.frozen
class Peer:
    """Where to connect, and the name the certificate must be valid for (also sent as SNI)."""

    address: str
    port: int
    host: str
    timeout: float


@attrs.frozen
class Verification:
    """One verifying handshake: `code` None when the certificate verified (`certificate` is then what
    `getpeercert()` gives), else OpenSSL's verify code and message."""

    code: int | None
    message: str = ""
    certificate: dict[str, Any] | None = None


@attrs.frozen
class CertificateFacts:
    """Each point judged on its own: None where it holds, else the verification that showed the problem.

    `chain`: chains to a CA this machine trusts; `name`: valid for the host (a code outside `NAME_MISMATCH`
    means it could not be judged); `dates`: valid now. `certificate`: the parsed certificate, when a
    verification succeeded (for its expiry date and issuer).
    """

    chain: Verification | None
    name: Verification | None
    dates: Verification | None
    certificate: dict[str, Any] | None


def unverified() -> ssl.SSLContext:
    """A context that completes the handshake whatever the certificate, to see it and to ask for an answer."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def handshake(peer: Peer, context: ssl.SSLContext) -> ssl.SSLSocket:
    """A new connection to `peer` with the TLS handshake done; `peer.timeout` bounds the connect and the
    handshake each. Raises `OSError` (refused, timed out, reset, not TLS) or `ssl.SSLError`."""
    raw = socket.create_connection((peer.address, peer.port), timeout=peer.timeout)
    try:
        return context.wrap_socket(raw, server_hostname=peer.host)
    except BaseException:
        raw.close()
        raise


def verify(peer: Peer, context: ssl.SSLContext) -> Verification:
    """Verify the certificate `peer` presents with `context`, on a connection of its own, closed at once."""
    try:
        with handshake(peer, context) as tls:
            return Verification(None, certificate=tls.getpeercert())
    except ssl.SSLCertVerificationError as exc:
        return Verification(exc.verify_code, exc.verify_message)


def _pinned(leaf: bytes, *, check_name: bool) -> ssl.SSLContext:
    """A context whose only trust anchor is the certificate `leaf` (DER) itself, so that its chain no longer
    matters and the name and dates are what remains to verify."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=ssl.DER_cert_to_PEM_cert(leaf))
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # a trust anchor that is not a CA
    context.check_hostname = check_name
    return context


def examine_certificate(peer: Peer, leaf: bytes, trusted: ssl.SSLContext) -> CertificateFacts:
    """Judge the chain, the name and the dates of the certificate `leaf` that `peer` presents; `trusted` verifies
    as ThingSpace would (name checked). Raises `OSError`/`ssl.SSLError` when a handshake cannot be made."""
    full = verify(peer, trusted)
    if full.code is None:
        return CertificateFacts(None, None, None, full.certificate)
    if full.code in OUT_OF_DATE:  # verified up to the dates: the chain and the name hold
        return CertificateFacts(None, None, full, None)
    chain = None if full.code in NAME_MISMATCH else full
    named = full if chain is None else verify(peer, _pinned(leaf, check_name=True))
    if named.code is None:
        return CertificateFacts(chain, None, None, named.certificate)
    if named.code in OUT_OF_DATE:
        return CertificateFacts(chain, None, named, None)
    dated = verify(peer, _pinned(leaf, check_name=False))
    return CertificateFacts(chain, named, None if dated.code is None else dated, dated.certificate)
