"""``--id-token`` against an IAM-protected revision, with each kind of credentials a CI has.

Google's token endpoints are faked on loopback, one server for all of them: the
STS token exchange (Workload Identity Federation, the ``external_account`` file
google-github-actions/auth writes), an OAuth token endpoint (a service-account
key's JWT grant, for an ID token or for the access token of the source of
impersonated credentials), the IAM Credentials API's ``generateIdToken``, and the metadata server
(``GCE_METADATA_HOST``). The credential files point at it as real ones point at
Google. The revision is a server that answers 403 unless
``X-Serverless-Authorization`` carries the ID token minted for its URL, as
Cloud Run's IAM check does; the gate runs in a subprocess and must PASS, with
the token never printed.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from revgate.idtoken import audience_for

EMAIL = "gate@my-project.iam.gserviceaccount.com"
CHECKLIST = "[health]\npath = \"/health\"\nready_budget = 2\n"


def jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def id_token_for(audience: str, how: str) -> str:
    return jwt({"aud": audience, "exp": int(time.time()) + 3600, "iss": "https://accounts.google.com", "sub": how})


@dataclass
class Google:
    """The fake endpoints; ``calls`` lists (path, what the request said)."""

    url: str
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def google() -> Iterator[Google]:
    box: dict[str, Google] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", "Metadata-Flavor": "Google", **(headers or {})}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # the metadata server
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            box["g"].calls.append((parts.path, {"query": query, "flavor": self.headers.get("Metadata-Flavor")}))
            if self.headers.get("Metadata-Flavor") != "Google":
                self._answer(403, {"error": "Missing Metadata-Flavor: Google"})
            elif parts.path == "/computeMetadata/v1/instance/service-accounts/default/identity":
                self._answer(200, id_token_for(query["audience"], "metadata"), {"Content-Type": "text/plain"})
            elif parts.path == "/computeMetadata/v1/instance/service-accounts/default/":
                self._answer(200, {"email": EMAIL, "aliases": ["default"], "scopes": [
                    "https://www.googleapis.com/auth/cloud-platform"]})
            else:
                self._answer(200, "", {"Content-Type": "text/plain"})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            auth = self.headers.get("Authorization", "")
            if self.path.endswith(":generateIdToken"):
                data = json.loads(body)
                box["g"].calls.append((self.path, {"auth": auth, **data}))
                if auth not in ("Bearer federated-access-token", "Bearer source-access-token"):
                    return self._answer(401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}})
                how = "wif" if auth == "Bearer federated-access-token" else "impersonated"
                return self._answer(200, {"token": id_token_for(data["audience"], how)})
            form = {k: v[0] for k, v in parse_qs(body).items()}
            box["g"].calls.append((self.path, form))
            if self.path == "/sts" and form.get("subject_token") == "github-oidc-token":
                return self._answer(200, {
                    "access_token": "federated-access-token", "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                    "token_type": "Bearer", "expires_in": 3600,
                })
            if self.path == "/oauth2/token" and "assertion" in form:  # a service-account key's JWT grant
                claims = json.loads(base64.urlsafe_b64decode(form["assertion"].split(".")[1] + "=="))
                if "target_audience" in claims:
                    return self._answer(200, {"id_token": id_token_for(claims["target_audience"], "key")})
                return self._answer(200, {"access_token": "source-access-token", "expires_in": 3600, "token_type": "Bearer"})
            self._answer(400, {"error": "invalid_request"})

    server, url = _serve(Handler)
    box["g"] = Google(url)
    yield box["g"]
    server.shutdown()


@pytest.fixture
def protected_revision() -> Iterator[tuple[str, list[str]]]:
    """An IAM-protected revision: 403 unless X-Serverless-Authorization has an ID token for its URL."""
    seen: list[str] = []
    box: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            header = self.headers.get("X-Serverless-Authorization", "")
            seen.append(header)
            token = header.removeprefix("Bearer ")
            try:
                claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
            except (IndexError, ValueError):
                claims = {}
            ok = claims.get("aud") == box["url"] and claims.get("exp", 0) > time.time()
            data = json.dumps({"status": "ok"} if ok else {"error": "forbidden"}).encode()
            self.send_response(200 if ok else 403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server, url = _serve(Handler)
    box["url"] = url
    yield url, seen
    server.shutdown()


def _key_info(email: str, google: Google) -> dict[str, Any]:
    """A service account's key file, its token URI on the fake."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return {
        "type": "service_account", "project_id": "my-project", "private_key_id": "k1", "private_key": pem.decode(),
        "client_email": email, "client_id": "1", "token_uri": f"{google.url}/oauth2/token",
    }


def _credentials(kind: str, google: Google, tmp_path: Path) -> dict[str, str]:
    """The environment of a CI whose credentials are of ``kind``."""
    impersonation = f"{google.url}/v1/projects/-/serviceAccounts/{EMAIL}:generateAccessToken"
    path = tmp_path / "credentials.json"
    if kind == "external_account":  # what google-github-actions/auth writes for Workload Identity Federation
        subject = tmp_path / "oidc-token"
        subject.write_text("github-oidc-token")
        info: dict[str, Any] = {
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/ci/providers/github",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": f"{google.url}/sts",
            "credential_source": {"file": str(subject)},
            "service_account_impersonation_url": impersonation,
        }
    elif kind == "impersonated_service_account":  # gcloud auth application-default login --impersonate-service-account
        # (google-auth sends a user's refresh token to Google's own token URI whatever the file says:
        # the source here is another service account's key, whose token_uri it follows)
        info = {
            "type": "impersonated_service_account",
            "service_account_impersonation_url": impersonation,
            "delegates": [],
            "source_credentials": _key_info("deployer@my-project.iam.gserviceaccount.com", google),
        }
    elif kind == "service_account":  # a key file
        info = _key_info(EMAIL, google)
    else:  # the metadata server (Cloud Build, Cloud Run Jobs, Compute Engine)
        host = google.url.removeprefix("http://")
        return {"GCE_METADATA_HOST": host, "GCE_METADATA_IP": host}
    path.write_text(json.dumps(info))
    return {"GOOGLE_APPLICATION_CREDENTIALS": str(path), "GCE_METADATA_HOST": "127.0.0.1:9", "NO_GCE_CHECK": "True"}


@pytest.mark.parametrize("kind", ["external_account", "impersonated_service_account", "service_account", "metadata"])
def test_id_token_from_each_kind_of_credentials_passes_an_iam_protected_revision(
    kind: str, google: Google, protected_revision: tuple[str, list[str]], run_suite, tmp_path: Path
) -> None:
    url, seen = protected_revision
    checklist = tmp_path / "checklist.toml"
    checklist.write_text(CHECKLIST)
    env = {"HOME": str(tmp_path), **_credentials(kind, google, tmp_path)}

    run = run_suite("tests_smoke", f"--revision-url={url}", f"--checklist={checklist}", "--id-token", env=env)

    assert run.returncode == 0, run
    assert "revgate verdict: PASS" in run.output and "ID token ***" in run.output
    token = seen[-1].removeprefix("Bearer ")
    assert token.count(".") == 2 and token not in run.output
    minted = [c for path, c in google.calls if path.endswith(":generateIdToken") or path.endswith("/identity")]
    if kind in ("external_account", "impersonated_service_account"):
        (call,) = minted
        assert call["audience"] == url and call["includeEmail"] is True
        assert call["auth"] == ("Bearer federated-access-token" if kind == "external_account" else "Bearer source-access-token")
    elif kind == "metadata":
        assert minted and minted[-1]["query"]["audience"] == url and minted[-1]["flavor"] == "Google"
    else:
        assert not minted and any(path == "/oauth2/token" for path, _ in google.calls)


def test_an_id_token_from_the_environment_is_used_as_is(protected_revision, run_suite, tmp_path: Path) -> None:
    url, seen = protected_revision
    checklist = tmp_path / "checklist.toml"
    checklist.write_text(CHECKLIST)
    token = id_token_for(url, "google-github-actions/auth token_format: id_token")

    run = run_suite("tests_smoke", f"--revision-url={url}", f"--checklist={checklist}", env={"REVGATE_ID_TOKEN": token})

    assert run.returncode == 0, run
    assert seen and set(seen) == {f"Bearer {token}"}
    assert token not in run.output


def test_a_bad_id_token_in_the_environment_is_exit_4_and_not_shown(run_suite, tmp_path: Path) -> None:
    for value, fragment in (("not a token", "is neither 1"), (jwt({"exp": 1}), "the ID token expired")):
        run = run_suite("tests_smoke", "--revision-url=http://127.0.0.1:9", env={"REVGATE_ID_TOKEN": value})
        run.assert_usage_error("REVGATE_ID_TOKEN", fragment)
        assert value not in run.output


def test_wif_without_a_service_account_says_how_to_get_an_id_token(google: Google, run_suite, tmp_path: Path) -> None:
    env = _credentials("external_account", google, tmp_path)
    info = json.loads(Path(env["GOOGLE_APPLICATION_CREDENTIALS"]).read_text())
    del info["service_account_impersonation_url"]
    Path(env["GOOGLE_APPLICATION_CREDENTIALS"]).write_text(json.dumps(info))

    run = run_suite("tests_smoke", "--revision-url=http://127.0.0.1:9", "--id-token", env={"HOME": str(tmp_path), **env})

    run.assert_usage_error("--id-token: cannot get an ID token for http://127.0.0.1:9", "service_account", "REVGATE_ID_TOKEN")


def test_the_audience_is_the_service_url() -> None:
    assert audience_for("https://sha-1a2b3c4---shop-abc123-ew.a.run.app") == "https://shop-abc123-ew.a.run.app"
    assert audience_for("https://canary---shop-123456789.europe-west1.run.app/api") == "https://shop-123456789.europe-west1.run.app"
    assert audience_for("https://shop-abc123-ew.a.run.app") == "https://shop-abc123-ew.a.run.app"
    assert audience_for("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
