#!/usr/bin/env python
"""Reads payments from the bank portal's API as a service, with OAuth 2.0 Client Credentials.

    SERVICE_CLIENT_ID=... SERVICE_CLIENT_SECRET=... python examples/service_client.py [--issuer URL]

`make run` registers the demo service client "payments-reader" (scope `read:payments`) and writes
its credentials to examples/service_client.env (git-ignored), which this script reads when the
variables are not set. The client (requests-oauth2client) finds the token endpoint through the
provider's discovery document, and keeps its access token until 60 seconds before it expires:
every call in between reuses it, and the next one after that fetches a fresh token first.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from requests_oauth2client import OAuth2Client, OAuth2ClientCredentialsAuth
from requests_oauth2client.exceptions import EndpointError, OAuth2Error

ENV_FILE = Path(__file__).resolve().parent / "service_client.env"
RENEW_BEFORE_EXPIRY_SECONDS = 60
SCOPE = "read:payments"


class PaymentsReader:
    """A service's view of GET /api/v1/payments, authenticated with its own (cached) access token."""

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        api_base: str | None = None,
        scope: str = SCOPE,
        session: requests.Session | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.api_base = (api_base or f"{self.issuer}/api/v1").rstrip("/")
        self.session = session or requests.Session()
        self.timeout = timeout
        # Plain http only on this machine (the dev portal); anywhere else the library insists on https.
        local = urlsplit(self.issuer).hostname in ("127.0.0.1", "localhost", "::1")
        self.client = OAuth2Client.from_discovery_endpoint(
            issuer=self.issuer,
            client_id=client_id,
            client_secret=client_secret,
            session=self.session,
            testing=local,
        )
        self.auth = OAuth2ClientCredentialsAuth(self.client, leeway=RENEW_BEFORE_EXPIRY_SECONDS, scope=scope)

    def payments(self) -> list[dict[str, Any]]:
        response = self._get(f"{self.api_base}/payments")
        if response.status_code == 401:
            # Revoked before its expiry (the grant was withdrawn): one fresh token, one more try.
            self.auth.token = None
            response = self._get(f"{self.api_base}/payments")
        response.raise_for_status()
        body = response.json()
        # A paginated answer ({"results": [...]}) or a plain list.
        results = body.get("results", body) if isinstance(body, dict) else body
        return list(results)

    def _get(self, url: str) -> requests.Response:
        return self.session.get(url, auth=self.auth, timeout=self.timeout, headers={"Accept": "application/json"})


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            name, sep, value = line.strip().partition("=")
            if sep and not name.startswith("#"):
                values[name.strip()] = value.strip()
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--issuer", help="the portal (OpenID provider), default $OIDC_ISSUER or http://127.0.0.1:8000")
    parser.add_argument("--env-file", type=Path, default=ENV_FILE, help="credentials file written by `make run`")
    parser.add_argument("--scope", default=SCOPE, help=f"scope to ask for (default {SCOPE})")
    args = parser.parse_args(argv)
    config = {**_read_env_file(args.env_file), **os.environ}
    issuer = args.issuer or config.get("OIDC_ISSUER") or "http://127.0.0.1:8000"
    client_id, client_secret = config.get("SERVICE_CLIENT_ID"), config.get("SERVICE_CLIENT_SECRET")
    if not client_id or not client_secret:
        print(f"Set SERVICE_CLIENT_ID and SERVICE_CLIENT_SECRET (or run `make run`, which writes {ENV_FILE}).")
        return 2
    try:
        reader = PaymentsReader(issuer=issuer, client_id=client_id, client_secret=client_secret, scope=args.scope)
        payments = reader.payments()
    except requests.HTTPError as exc:
        print(f"The portal refused: {exc.response.status_code} {exc.response.text}", file=sys.stderr)
        return 1
    except EndpointError as exc:
        print(f"No access token from {issuer}: {exc.error} {exc.description or ''}".rstrip(), file=sys.stderr)
        return 1
    except OAuth2Error as exc:
        print(f"No access token from {issuer}: {exc}", file=sys.stderr)
        return 1
    except requests.RequestException as exc:
        print(f"{issuer} cannot be reached: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(payments, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
