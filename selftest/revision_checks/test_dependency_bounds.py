"""Every lower bound in pyproject.toml is the first version that has what revgate uses.

Measured once by installing every bound exactly (``pip install pkg==MIN`` for each direct dependency,
the sandbox and dev extras) in a fresh virtual environment and running the rollback selftests
there; this test keeps the bounds found that way from drifting back, and checks, in whatever
environment runs it, that the installed clients have the fields the code reads."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

FIRST = {
    # UpdateServiceRequest.update_mask 0.10.7, Service.invoker_iam_disabled 0.10.9,
    # ServiceScaling.max_instance_count and VolumeMount.sub_path 0.13.0
    "google-cloud-run": "0.13.0",
    # imported directly; the first 2.x google-cloud-run allows (Retry(timeout=), exceptions)
    "google-api-core": "2.11.1",
    "pytest-xdist": "3.6.1",  # 3.6.0 was yanked
    "uvicorn": "0.35",  # the sample service's ws="websockets-sansio"
    "pytest-timeout": "2.3.1",  # no 2.3.0 was released
    "build": "1.2.1",  # 1.2.0 was yanked
}


def _bounds() -> dict[str, str]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    requirements = list(project["dependencies"]) + [r for extra in project["optional-dependencies"].values() for r in extra]
    out = {}
    for requirement in requirements:
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?>=([0-9][0-9.]*)", requirement)
        assert match, f"{requirement!r} has no lower bound"
        out[match.group(1).lower()] = match.group(3)
    return out


def test_every_dependency_has_a_lower_and_an_upper_bound():
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    for requirement in project["dependencies"]:
        assert ">=" in requirement and "<" in requirement, requirement


def test_lower_bounds_are_the_first_versions_with_what_revgate_uses():
    bounds = _bounds()
    for name, first in FIRST.items():
        assert bounds.get(name) == first, f"{name}: pyproject says >={bounds.get(name)}, the first usable is {first}"


def test_the_installed_cloud_run_client_has_the_fields_revgate_reads_and_writes():
    from google.cloud import run_v2

    assert "update_mask" in run_v2.UpdateServiceRequest.meta.fields
    assert "invoker_iam_disabled" in run_v2.Service.meta.fields
    assert {"min_instance_count", "max_instance_count"} <= set(run_v2.ServiceScaling.meta.fields)
    assert "sub_path" in run_v2.VolumeMount.meta.fields
