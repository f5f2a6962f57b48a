"""OpenAPI 3 schema (drf-spectacular) and the docs page: complete, valid, no CDN."""

from __future__ import annotations

import io

import pytest
import yaml
from django.core.management import call_command

AUTH_PATHS = {
    "/api/v1/auth/login": "post",
    "/api/v1/auth/mfa/challenge": "post",
    "/api/v1/auth/mfa/verify": "post",
    "/api/v1/auth/token/refresh": "post",
    "/api/v1/auth/logout": "post",
    "/api/v1/me": "get",
    "/api/v1/sessions": "get",
    "/api/v1/sessions/{session_id}": "delete",
}


@pytest.fixture(scope="module")
def schema() -> dict:
    out = io.StringIO()
    # --validate checks the result against the OpenAPI 3 JSON schema; --fail-on-warn makes any
    # unresolved serializer, authenticator or enum a failure.
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    return yaml.safe_load(out.getvalue())


def test_schema_validates_and_covers_every_auth_endpoint(schema):
    assert schema["openapi"].startswith("3.")
    for path, method in AUTH_PATHS.items():
        assert method in schema["paths"][path], path


def test_bearer_scheme_and_who_needs_it(schema):
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schema["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    assert {"bearerAuth": []} in schema["paths"]["/api/v1/me"]["get"]["security"]
    login_security = schema["paths"]["/api/v1/auth/login"]["post"].get("security", [{}])
    assert {"bearerAuth": []} not in login_security


def test_error_responses_are_documented(schema):
    login = schema["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert {"200", "400", "401", "403", "429"} <= set(login)
    refresh = schema["paths"]["/api/v1/auth/token/refresh"]["post"]["responses"]
    assert {"200", "400", "401", "429"} <= set(refresh)
    assert "404" in schema["paths"]["/api/v1/sessions/{session_id}"]["delete"]["responses"]
    error = schema["components"]["schemas"]["Error"]
    assert {"detail", "code"} <= set(error["properties"])
    assert "errors" in schema["components"]["schemas"]["ValidationError"]["properties"]


def test_openapi_spec_validator_if_installed(schema):
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(schema)


def test_schema_and_docs_are_served_without_a_token_or_a_cdn(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert "/api/v1/auth/login" in response.json()["paths"]
    docs = api.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "https://" not in html
    assert "<script>" not in html and "<style>" not in html, "strict CSP: no inline script or style"
    script = api.get("/api/docs/?script=")
    assert script.status_code == 200 and b"SwaggerUIBundle" in script.content


def test_jwks_endpoint(api):
    response = api.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    rsa = [k for k in keys if k["kty"] == "RSA"]
    assert rsa and all(k["alg"] == "RS256" and k["use"] == "sig" and k["kid"] for k in rsa)
    # Beside them, the ES256 key of the provider's FAPI 2.0 clients (issue 18): one JWKS.
    assert [(k["kty"], k["crv"], k["alg"]) for k in keys if k not in rsa] == [("EC", "P-256", "ES256")]
    assert "max-age" in response["Cache-Control"]
