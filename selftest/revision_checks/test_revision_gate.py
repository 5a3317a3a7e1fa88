"""The [revision] checks, run as a user runs the gate, against the sandbox's Cloud Run.

A canary deployed with the runbook's settings passes every key; a checklist where every key is
wrong fails each one with its message line and rolls the canary back; the image is compared by
digest; no environment value the checklist does not list, and no secret value, ever appears; an
unanswering Admin API is NOT VERIFIED and changes no traffic; a bad checklist value is exit 4.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.control import Sandbox
from sandbox.revision_settings import fake_secret_value, image_digest

RUNBOOK = dict(
    image="europe-docker.pkg.dev/acme/app/web:v1",
    memory="2Gi",
    cpu="2",
    timeout_s=300,
    min_instances=1,
    max_instances=10,
    concurrency=80,
    service_account="web-runtime@acme.iam.gserviceaccount.com",
    env={"MODE": "production", "FEATURE_TOKEN": "plain-value-7d1e4b"},
    secrets={"API_KEY": "api-key:3", "/secrets/db/password": "db-password:latest"},
    allow_unauthenticated=True,
)
"""The runbook's ``gcloud run deploy`` settings (``--memory 2Gi --cpu 2 --timeout 300 ...``)."""


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = Sandbox.up(tmp_path_factory.mktemp("sandbox"), seed=5, ready_timeout=15)
    try:
        yield sb
    finally:
        sb.down()


@pytest.fixture
def sb(sandbox: Sandbox) -> Iterator[Sandbox]:
    sandbox.reset_calls()
    yield sandbox
    sandbox.reset_calls()


@pytest.fixture
def canary(sb: Sandbox, request: pytest.FixtureRequest) -> Callable[..., tuple[str, str, str, str]]:
    """``canary(**settings)``: a stable revision at 90 %, a canary deployed with the runbook's settings
    (changed by ``settings``) at 10 % behind tag ``canary``; returns (service, stable, canary, tag URL)."""

    def make(**settings: Any) -> tuple[str, str, str, str]:
        digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:6]
        service = f"rv-{request.node.name[5:20].replace('_', '-').strip('-')}-{digest}"
        stable = sb.deploy(service)
        candidate = sb.deploy(service, tag="canary", no_traffic=True, **{**RUNBOOK, **settings})
        sb.update_traffic(service, to_revisions={stable: 90, candidate: 10})
        return service, stable, candidate, sb.tag_url(service, "canary")

    return make


@pytest.fixture
def gate(sb: Sandbox, run_suite: Callable[..., Any], tmp_path: Path) -> Callable[..., Any]:
    """``gate(service, url, checklist_text, *extra)``: the revision checks against the sandbox."""

    def run(service: str | None, url: str, checklist: str, *extra: str, env: dict[str, str] | None = None) -> Any:
        path = tmp_path / "checklist.toml"
        path.write_text(checklist)
        args = ["tests_revision", f"--revision-url={url}", f"--checklist={path}", "-rA",
                f"--report-json={tmp_path / 'report.json'}", f"--rollback-report={tmp_path / 'rollback.json'}", *extra]
        if service:
            args.append(f"--service={service}")
        return run_suite(*args, env={**sb.env, **(env or {})})

    return run


def artifacts(tmp_path: Path) -> str:
    """Every file the gate wrote (JSON reports, junit xml), as one text."""
    texts = []
    for path in sorted(tmp_path.glob("*.json")) + sorted(tmp_path.glob("junit-*.xml")):
        texts.append(path.read_text())
    return "\n".join(texts)


def split(sb: Sandbox, service: str) -> dict[str, int]:
    return {e["revision"]: e["percent"] for e in sb.traffic(service) if e["percent"]}


def loads(text: str) -> Any:
    return json.loads(text)


RUNBOOK_CHECKLIST = """
[revision]
image = "europe-docker.pkg.dev/acme/app/web:v1"
memory = "2Gi"
cpu = 2
timeout_s = 300
concurrency = 80
min_instances = 1
max_instances = 10
port = 8080
service_account = "web-runtime@acme.iam.gserviceaccount.com"
env = ["MODE", "FEATURE_TOKEN", "API_KEY"]
env_equals = ["MODE"]
env_values = { MODE = "production" }
secrets = { API_KEY = "api-key:3", "/secrets/db/password" = "db-password:latest" }
allow_unauthenticated = true
"""

WRONG_CHECKLIST = """
[revision]
image = "europe-docker.pkg.dev/acme/app/web:v2"
memory = "1Gi"
cpu = "1000m"
timeout_s = 60
concurrency = 10
min_instances = 0
max_instances = 5
port = 9090
service_account = "other@acme.iam.gserviceaccount.com"
env = ["MODE", "MISSING_VAR"]
env_equals = ["MODE"]
env_values = { MODE = "staging" }
secrets = { API_KEY = "api-key:2", "/secrets/db/password" = "db-password:1" }
allow_unauthenticated = false
"""

KEYS = ["image", "memory", "cpu", "timeout_s", "concurrency", "min_instances", "max_instances", "port",
        "service_account", "env", "env_values", "secrets", "allow_unauthenticated"]
DIGEST_OF_V1 = image_digest(RUNBOOK["image"])


def _ids(keys: list[str]) -> set[str]:
    return {f"test_revision[{k}]" for k in keys}


def test_runbook_revision_passes_every_key(sb, canary, gate):
    service, stable, candidate, url = canary()
    run = gate(service, url, RUNBOOK_CHECKLIST)
    assert run.returncode == 0, run
    assert run.passed() == _ids(KEYS), run
    assert split(sb, service) == {stable: 90, candidate: 10}


def test_every_key_wrong_fails_with_its_line_and_rolls_back(sb, canary, gate, tmp_path):
    service, stable, candidate, url = canary()
    run = gate(service, url, WRONG_CHECKLIST)
    assert run.returncode == 1, run
    assert run.failed() == _ids(KEYS), run
    r = f"revision {candidate}"
    expected = [
        f"[revision] image: the checklist wants europe-docker.pkg.dev/acme/app/web:v2, {r} was deployed from "
        f"europe-docker.pkg.dev/acme/app/web:v1 (europe-docker.pkg.dev/acme/app/web@{DIGEST_OF_V1})",
        f"[revision] memory: the checklist wants 1Gi, {r} has 2Gi",
        f"[revision] cpu: the checklist wants 1 CPU, {r} has 2 CPU",
        f"[revision] timeout_s: the checklist wants 60 s, {r} has a request timeout of 300 s",
        f"[revision] concurrency: the checklist wants 10 requests per instance, {r} has 80",
        f"[revision] min_instances: the checklist wants 0, {r} has 1",
        f"[revision] max_instances: the checklist wants 5, {r} has 10",
        f"[revision] port: the checklist wants container port 9090, {r} has 8080",
        f"[revision] service_account: the checklist wants other@acme.iam.gserviceaccount.com, {r} has "
        "web-runtime@acme.iam.gserviceaccount.com",
        f"[revision] env: the checklist wants MODE, MISSING_VAR set; {r} has no MISSING_VAR",
        f"[revision] env_values: {r}: MODE is 'production', the checklist wants 'staging'",
        f"[revision] secrets: {r}: API_KEY is api-key:3, the checklist wants api-key:2; "
        "/secrets/db/password is db-password:latest, the checklist wants db-password:1",
        "[revision] allow_unauthenticated: the checklist wants the service private (no allUsers in roles/run.invoker); "
        "its IAM policy binds allUsers to roles/run.invoker (public)",
    ]
    for line in expected:
        assert line in run.output, line
    assert "ROLLBACK DONE" in run.output, run
    assert split(sb, service) == {stable: 100}
    # no secret value, and no value of a name env_equals does not list, anywhere a user or CI reads
    everything = run.output + artifacts(tmp_path)
    for value in (fake_secret_value("api-key:3"), RUNBOOK["env"]["FEATURE_TOKEN"]):
        assert value not in everything


def test_image_digest_is_compared(sb, canary, gate):
    service, stable, candidate, url = canary()
    checklist = '[revision]\nimage = "europe-docker.pkg.dev/acme/app/web@sha256:' + "0" * 64 + '"\n'
    right = gate(service, url, checklist, f"--expect-image=europe-docker.pkg.dev/acme/app/web@{DIGEST_OF_V1}")
    assert right.returncode == 0, right  # --expect-image overrides the checklist's image
    assert right.passed() == _ids(["image"]), right
    wrong = gate(service, url, checklist)
    assert wrong.returncode == 1, wrong
    assert f"[revision] image: the checklist wants digest sha256:{'0' * 64}, revision {candidate} runs {DIGEST_OF_V1}" in wrong.output
    assert split(sb, service) == {stable: 100}


def test_expect_image_without_a_revision_section_makes_the_image_check(sb, canary, gate):
    service, stable, candidate, url = canary()
    run = gate(service, url, '[health]\npath = "/health"\n', "--expect-image=europe-docker.pkg.dev/acme/app/web:v1")
    assert run.returncode == 0, run
    assert run.passed() == _ids(["image"]), run
    bad = gate(service, url, '[health]\npath = "/health"\n', "--expect-image=not an image")
    bad.assert_usage_error("--expect-image", "not an image")


def test_secret_of_another_version_and_missing_env_fail(sb, canary, gate, tmp_path):
    service, stable, candidate, url = canary(secrets={"API_KEY": "api-key:4", "/secrets/db/password": "db-password:latest"})
    checklist = '[revision]\nenv = ["API_KEY", "MODE", "ABSENT_ONE"]\nsecrets = { API_KEY = "api-key:3" }\n'
    run = gate(service, url, checklist)
    assert run.returncode == 1, run
    assert run.failed() == _ids(["env", "secrets"]), run
    assert f"[revision] env: the checklist wants API_KEY, MODE, ABSENT_ONE set; revision {candidate} has no ABSENT_ONE" in run.output
    assert f"[revision] secrets: revision {candidate}: API_KEY is api-key:4, the checklist wants api-key:3" in run.output
    everything = run.output + artifacts(tmp_path)
    for value in (fake_secret_value("api-key:4"), "production", RUNBOOK["env"]["FEATURE_TOKEN"]):
        assert value not in everything, value
    assert split(sb, service) == {stable: 100}


def test_a_secret_of_another_project_is_not_this_projects_secret(sb, canary, gate):
    """secret_key_ref.secret is NAME for the service's own project, projects/P/secrets/NAME for another's:
    a secret of the same name in another project fails a checklist that names this project's, and passes
    one that names that project."""
    other = "projects/123456789012/secrets/api-key"
    own = f"projects/{sb.project}/secrets/db-password"
    service, stable, candidate, url = canary(secrets={"API_KEY": f"{other}:3", "/secrets/db/password": f"{own}:latest"})

    run = gate(service, url, '[revision]\nsecrets = { API_KEY = "api-key:3", "/secrets/db/password" = "db-password:latest" }\n')

    assert run.returncode == 1, run
    assert f"[revision] secrets: revision {candidate}: API_KEY is {other}:3, the checklist wants api-key:3" in run.output
    assert "/secrets/db/password is" not in run.output  # the own project's full name is its short one
    assert split(sb, service) == {stable: 100}

    sb.update_traffic(service, to_revisions={stable: 90, candidate: 10})
    run = gate(service, url, f'[revision]\nsecrets = {{ API_KEY = "{other}:3" }}\n')
    assert run.returncode == 0, run


def test_allow_unauthenticated_mismatch_fails(sb, canary, gate):
    service, stable, candidate, url = canary(allow_unauthenticated=False)
    run = gate(service, url, "[revision]\nallow_unauthenticated = true\n")
    assert run.returncode == 1, run
    assert "[revision] allow_unauthenticated: the checklist wants the service public (allUsers has roles/run.invoker); " \
           "its IAM policy does not bind allUsers to roles/run.invoker (private)" in run.output
    assert split(sb, service) == {stable: 100}


def test_admin_api_down_is_not_verified_and_changes_nothing(sb, canary, gate):
    service, stable, candidate, url = canary()
    sb.inject("GetRevision", "UNAVAILABLE", -1)
    run = gate(service, url, RUNBOOK_CHECKLIST)
    assert run.returncode == 6, run
    reasons = set(re.findall(r"NOT VERIFIED: (\[revision\] )?(the Cloud Run Admin API did not answer GetRevision [^\n]*)", run.output))
    assert len(reasons) == 1, run  # one reason, the same for every key
    assert "Traceback" not in run.output
    assert split(sb, service) == {stable: 90, candidate: 10}


def test_without_service_not_verified(sb, canary, gate):
    service, stable, candidate, url = canary()
    run = gate(None, url, "[revision]\nmemory = \"2Gi\"\n")
    assert run.returncode == 6, run
    assert "the [revision] checks need --service" in run.output


def test_bad_checklist_value_is_one_line_exit_4(sb, canary, gate):
    service, stable, candidate, url = canary()
    run = gate(service, url, '[revision]\nmemory = "2 gigs"\n')
    run.assert_usage_error("[revision] key 'memory'", "'2 gigs' is not a memory size")
    run = gate(service, url, '[revision]\nmemroy = "2Gi"\n')
    run.assert_usage_error("[revision] key 'memroy'", "unknown key")
    run = gate(service, url, '[revision]\nenv_values = { MODE = "x" }\n')
    run.assert_usage_error("env_values 'MODE'", "env_equals")
    assert split(sb, service) == {stable: 90, candidate: 10}


def test_service_url_checks_every_serving_revision(sb, canary, gate):
    service, stable, candidate, url = canary()
    run = gate(service, sb.service_url(service), '[revision]\nmemory = "2Gi"\n', "--rollback=off")
    assert run.returncode == 1, run
    assert f"[revision] memory: the checklist wants 2Gi, revision {stable} has 512Mi" in run.output
    assert f"revision {candidate} has" not in run.output


# -- what Cloud Run applies, where two settings say it ------------------------------------------


def test_a_service_without_the_invoker_iam_check_is_public(sb, canary, gate):
    """Google's recommended way to make a service public: no allUsers binding, the invoker check off."""
    service, stable, candidate, url = canary(allow_unauthenticated=False, invoker_iam_disabled=True)
    public = gate(service, url, "[revision]\nallow_unauthenticated = true\n")
    assert public.returncode == 0, public
    assert public.passed() == _ids(["allow_unauthenticated"]), public
    private = gate(service, url, "[revision]\nallow_unauthenticated = false\n")
    assert private.returncode == 1, private
    assert "[revision] allow_unauthenticated: the checklist wants the service private" in private.output, private
    assert "it disables the invoker IAM check (invoker_iam_disabled: anyone may call it, public)" in private.output, private
    assert split(sb, service) == {stable: 100}


def test_service_level_min_instances_apply_before_the_revisions(sb, canary, gate):
    service, stable, candidate, url = canary(min_instances=0, service_min_instances=2)
    right = gate(service, url, "[revision]\nmin_instances = 2\n")
    assert right.returncode == 0, right  # the revision's own 0 is not what Cloud Run keeps warm
    assert right.passed() == _ids(["min_instances"]), right
    wrong = gate(service, url, "[revision]\nmin_instances = 0\n")
    assert wrong.returncode == 1, wrong
    assert ("[revision] min_instances: the checklist wants 0, the service-level limit (Service.scaling, divided among "
            f"the revisions with traffic) is 2 (revision {candidate}'s own: 0)") in wrong.output, wrong
    assert split(sb, service) == {stable: 100}


def test_a_wrong_service_level_max_instances_fails(sb, canary, gate):
    service, stable, candidate, url = canary(max_instances=10, service_max_instances=50)
    run = gate(service, url, "[revision]\nmax_instances = 10\n")
    assert run.returncode == 1, run  # the revision's 10 matches, but the service lets 50 run
    assert ("[revision] max_instances: the checklist wants 10, the service-level limit (Service.scaling, divided among "
            f"the revisions with traffic) is 50 (revision {candidate}'s own: 10)") in run.output, run
    assert split(sb, service) == {stable: 100}


def test_concurrency_defaults_to_one_below_one_cpu(sb, canary, gate):
    service, stable, candidate, url = canary(cpu="0.5", memory="512Mi", concurrency=None)
    right = gate(service, url, '[revision]\ncpu = "500m"\nconcurrency = 1\n')
    assert right.returncode == 0, right
    assert right.passed() == _ids(["cpu", "concurrency"]), right
    wrong = gate(service, url, "[revision]\nconcurrency = 80\n")
    assert wrong.returncode == 1, wrong
    assert (f"[revision] concurrency: the checklist wants 80 requests per instance, revision {candidate} has 1 "
            "(unset: Cloud Run's default for CPU < 1)") in wrong.output, wrong
    with pytest.raises(Exception, match="requires a maximum concurrency of 1"):
        sb.deploy(service, no_traffic=True, tag="other", cpu="0.5", concurrency=10)  # refused, as Cloud Run does
