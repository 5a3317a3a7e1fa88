"""Shapes of the Admin API's answers that the sandbox does not produce, judged by the same code:
a secret volume mounted from a ``sub_path``, and an image the API names by the deploy's tag.
The messages are real ``run_v2`` ones (proto-plus), not stand-ins."""

from __future__ import annotations

from google.cloud import run_v2

from revgate.checklist import RevisionConfig
from revgate.revision_config import Configuration, judge

SERVICE = "projects/acme/locations/europe-west1/services/web"
DIGEST = "sha256:" + "ab" * 32


def _config(revision: run_v2.Revision, **service: object) -> Configuration:
    return Configuration(service=SERVICE, revisions={"web-00002": revision}, template_revision="web-00002", **service)


def _secret_revision(mount_path: str, sub_path: str, items: list[tuple[str, str]]) -> run_v2.Revision:
    volume = run_v2.Volume(
        name="db",
        secret=run_v2.SecretVolumeSource(secret="db-password", items=[run_v2.VersionToPath(path=p, version=v) for p, v in items]),
    )
    container = run_v2.Container(
        image=f"europe-docker.pkg.dev/acme/app/web@{DIGEST}",
        ports=[run_v2.ContainerPort(container_port=8080)],
        volume_mounts=[run_v2.VolumeMount(name="db", mount_path=mount_path, sub_path=sub_path)],
    )
    return run_v2.Revision(name=f"{SERVICE}/revisions/web-00002", containers=[container], volumes=[volume])


def test_a_secret_file_under_a_sub_path_is_where_the_mount_shows_it():
    rev = _secret_revision("/secrets", "db", [("db/password", "3")])
    assert judge("secrets", RevisionConfig(secrets={"/secrets/password": "db-password:3"}), _config(rev)).outcome == "pass"
    wrong = judge("secrets", RevisionConfig(secrets={"/secrets/db/password": "db-password:3"}), _config(rev))
    assert wrong.outcome == "fail" and "/secrets/db/password is not mounted" in wrong.message, wrong


def test_a_sub_path_naming_the_file_mounts_the_file_itself():
    rev = _secret_revision("/etc/app/password", "password", [("password", "latest")])
    verdict = judge("secrets", RevisionConfig(secrets={"/etc/app/password": "db-password:latest"}), _config(rev))
    assert verdict.outcome == "pass", verdict


def _tagged(image: str) -> run_v2.Revision:
    container = run_v2.Container(image=image, ports=[run_v2.ContainerPort(container_port=8080)])
    return run_v2.Revision(name=f"{SERVICE}/revisions/web-00002", containers=[container])


def test_an_image_named_by_tag_is_compared_by_tag():
    rev = _tagged("europe-docker.pkg.dev/acme/app/web:v1")
    assert judge("image", RevisionConfig(image="europe-docker.pkg.dev/acme/app/web:v1"), _config(rev)).outcome == "pass"
    wrong = judge("image", RevisionConfig(image="europe-docker.pkg.dev/acme/app/web:v2"), _config(rev))
    assert wrong.outcome == "fail", wrong
    assert "wants europe-docker.pkg.dev/acme/app/web:v2, revision web-00002 runs europe-docker.pkg.dev/acme/app/web:v1" in wrong.message


def test_a_digest_expected_of_an_image_named_by_tag_is_not_verified_never_failed():
    rev = _tagged("europe-docker.pkg.dev/acme/app/web:v1")
    verdict = judge("image", RevisionConfig(image=f"europe-docker.pkg.dev/acme/app/web@{DIGEST}"), _config(rev))
    assert verdict.outcome == "not verified", verdict
    assert "gives no digest for a revision: give --expect-image europe-docker.pkg.dev/acme/app/web:v1" in verdict.message


def test_manual_scaling_has_no_minimum_to_compare():
    rev = _tagged(f"europe-docker.pkg.dev/acme/app/web@{DIGEST}")
    verdict = judge("min_instances", RevisionConfig(min_instances=1), _config(rev, manual_instances=3))
    assert verdict.outcome == "fail" and "the service scales manually (3 instances" in verdict.message, verdict
