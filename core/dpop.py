"""DPoP proofs (RFC 9449): verification for the provider's endpoints and the resource APIs.

One function, `verify_proof`, checks a `DPoP` header the way RFC 9449 section 4.3 lists it:
a single compact JWS whose header has `typ: dpop+jwt`, an allowed asymmetric `alg` (never
`none` or HS*) and a public `jwk` (no private members); signed by that key (joserfc); `htm`
and `htu` naming this request (query and fragment ignored); `iat` within the window; a `jti`
seen once (Redis, `cache.add`, for as long as the proof could be accepted); `ath` the hash of
the access token on resource requests; the server nonce when nonces are required; and, when
the caller knows the key the token is bound to, that key's thumbprint (RFC 7638, `cnf.jkt`).

Server nonces are stateless: a Django `TimestampSigner` value (HMAC with SECRET_KEY, salted),
valid for DPOP_NONCE_LIFETIME_SECONDS; a fresh one is handed out in every `DPoP-Nonce` header.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.utils import timezone
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry
from joserfc.jws import JWSRegistry

PROOF_TYPE = "dpop+jwt"
MAX_PROOF_LENGTH = 4096
ERROR_INVALID_PROOF = "invalid_dpop_proof"
ERROR_USE_NONCE = "use_dpop_nonce"
_NONCE_SALT = "core.dpop.nonce"
_JTI_PREFIX = "dpop-jti:"


class DPoPError(Exception):
    """A proof that must be refused. `error` is `invalid_dpop_proof` or `use_dpop_nonce` (then
    the response carries a fresh nonce in `DPoP-Nonce`)."""

    def __init__(self, description: str, *, error: str = ERROR_INVALID_PROOF, replayed: bool = False) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.replayed = replayed  # a proof accepted before, presented again (callers audit it)


@dataclass(frozen=True)
class Proof:
    jkt: str  # RFC 7638 thumbprint of the proof's key: what tokens are bound to (cnf.jkt)
    jti: str
    iat: int


def algorithms() -> list[str]:
    return list(getattr(settings, "DPOP_ALGORITHMS", ["ES256", "PS256"]))


def max_age() -> int:
    return int(getattr(settings, "DPOP_PROOF_MAX_AGE_SECONDS", 60))


def nonce_required() -> bool:
    return bool(getattr(settings, "DPOP_REQUIRE_NONCE", False))


def access_token_hash(access_token: str) -> str:
    """`ath`: base64url(SHA-256(the access token's ASCII))."""
    digest = hashlib.sha256(access_token.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _registry() -> JWSRegistry:
    """joserfc's registry for proofs: only our algorithms (PS256 is not in joserfc's "recommended"
    set, so it is named explicitly), and room in the header for a 2048+-bit RSA `jwk` (the
    default limit, 512 bytes, only fits EC keys)."""
    registry = JWSRegistry(algorithms=algorithms())
    registry.max_header_length = 4096
    return registry


def nonce_issue() -> str:
    return signing.TimestampSigner(salt=_NONCE_SALT).sign(secrets.token_urlsafe(8))


def _nonce_valid(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 200:
        return False
    try:
        signing.TimestampSigner(salt=_NONCE_SALT).unsign(
            value, max_age=int(getattr(settings, "DPOP_NONCE_LIFETIME_SECONDS", 300))
        )
    except signing.BadSignature:
        return False
    return True


def _normalise_uri(uri: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", "", ""))


def challenge(*, error: str | None = None, description: str | None = None) -> str:
    """The `WWW-Authenticate: DPoP ...` value of a refused resource request (RFC 9449 7.1)."""
    parts = [f'algs="{" ".join(algorithms())}"']
    if error:
        parts.insert(0, f'error="{error}"')
        if description:
            parts.insert(1, 'error_description="{}"'.format(description.replace('"', "'")))
    return "DPoP " + ", ".join(parts)


def verify_proof(
    proof: str | None,
    *,
    htm: str,
    htu: str,
    access_token: str | None = None,
    jkt: str | None = None,
) -> Proof:
    """Checks one DPoP proof for this request; raises DPoPError. Records its jti (replay)."""
    if not proof or not isinstance(proof, str):
        raise DPoPError("A DPoP proof is required.")
    if len(proof) > MAX_PROOF_LENGTH or "," in proof or proof.count(".") != 2:
        raise DPoPError("The DPoP header must hold exactly one proof.")
    try:
        header = jws.extract_compact(proof.encode("ascii"), registry=_registry()).headers()
    except (JoseError, ValueError, UnicodeError, TypeError) as exc:
        raise DPoPError("The DPoP proof is not a JWS.") from exc
    if header.get("typ") != PROOF_TYPE:
        raise DPoPError('The DPoP proof must have typ "dpop+jwt".')
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms():
        raise DPoPError(f"The DPoP proof must be signed with one of {', '.join(algorithms())}.")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or any(member in jwk for member in ("d", "p", "q", "dp", "dq", "qi", "k")):
        raise DPoPError("The DPoP proof must carry a public key (jwk).")
    try:
        key = JWKRegistry.import_key(jwk)
        token = jwt.decode(proof, key, algorithms=[alg], registry=_registry())
    except (JoseError, ValueError, TypeError) as exc:
        raise DPoPError("The DPoP proof's signature is not valid.") from exc
    if getattr(key.raw_value, "key_size", 2048) < 2048 and key.key_type == "RSA":
        raise DPoPError("The DPoP proof's RSA key is shorter than 2048 bits.")
    claims = token.claims
    thumbprint = key.thumbprint()

    if claims.get("htm") != htm.upper():
        raise DPoPError("The DPoP proof is for another HTTP method (htm).")
    claimed_htu = claims.get("htu")
    if not isinstance(claimed_htu, str) or _normalise_uri(claimed_htu) != _normalise_uri(htu):
        raise DPoPError("The DPoP proof is for another URL (htu).")
    iat = claims.get("iat")
    now = int(timezone.now().timestamp())
    # FAPI 2.0 5.3.1: up to 10 seconds in the future is clock offset.
    leeway = int(getattr(settings, "DPOP_PROOF_FUTURE_SECONDS", 10))
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise DPoPError("The DPoP proof has no iat.")
    if iat > now + leeway or iat < now - max_age():
        raise DPoPError("The DPoP proof is too old or from the future (iat).")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 8 <= len(jti) <= 256:
        raise DPoPError("The DPoP proof has no jti.")
    if access_token is not None and claims.get("ath") != access_token_hash(access_token):
        raise DPoPError("The DPoP proof is not for this access token (ath).")
    if jkt is not None and not secrets.compare_digest(thumbprint, jkt):
        raise DPoPError("The DPoP proof is signed with another key than the token is bound to.")
    if nonce_required() and not _nonce_valid(claims.get("nonce")):
        raise DPoPError("A fresh DPoP nonce is required.", error=ERROR_USE_NONCE)
    # Last: a proof refused above may be sent again once corrected; an accepted one never.
    replay_key = _JTI_PREFIX + hashlib.sha256(f"{thumbprint}:{jti}".encode()).hexdigest()
    if not cache.add(replay_key, 1, timeout=max_age() + leeway + 5):
        raise DPoPError("This DPoP proof was already used (jti).", replayed=True)
    return Proof(jkt=thumbprint, jti=jti, iat=iat)
