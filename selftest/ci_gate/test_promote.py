"""``--promote PERCENT``: a canary rollout driven by the gate (0 -> 10 -> 100), never after a failure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.control import Sandbox

from .conftest import split_of, tags_of


def test_rollout_0_10_100_keeps_tags(sandbox: Sandbox, service: str, gate: Callable[..., Any]) -> None:
    stable = sandbox.deploy(service, tag="stable")
    canary = sandbox.deploy(service, tag="canary", no_traffic=True)
    url = sandbox.tag_url(service, "canary")
    assert split_of(sandbox, service) == {stable: 100}

    g = gate(url, f"--service={service}", "--promote", "10")
    assert g.run.returncode == 0, g.run
    assert split_of(sandbox, service) == {stable: 90, canary: 10}
    assert tags_of(sandbox, service) == {"stable": stable, "canary": canary}
    assert g.json["promotion"]["status"] == "done" and g.json["promotion"]["percent"] == 10
    assert g.json["promotion"]["traffic"]["planned_split"] == {canary: 10, stable: 90}
    assert f"promotion (done): promoted {canary} to 10 %" in g.output
    assert f"promotion (done): promoted {canary} to 10 %" in g.markdown

    g = gate(url, f"--service={service}", env={"REVGATE_PROMOTE": "100"})
    assert g.run.returncode == 0, g.run
    assert split_of(sandbox, service) == {canary: 100}
    assert tags_of(sandbox, service) == {"stable": stable, "canary": canary}
    assert g.json["promotion"]["status"] == "done"


def test_promotion_scales_the_pre_run_split(sandbox: Sandbox, service: str, gate: Callable[..., Any]) -> None:
    a = sandbox.deploy(service)
    b = sandbox.deploy(service)
    sandbox.update_traffic(service, to_revisions={a: 70, b: 30})
    canary = sandbox.deploy(service, tag="canary", no_traffic=True)

    g = gate(sandbox.tag_url(service, "canary"), f"--service={service}", "--promote=25")

    assert g.run.returncode == 0, g.run
    # 75 % shared 70:30 by the largest remainder: 52.5 / 22.5 -> 53 / 22
    assert split_of(sandbox, service) == {a: 53, b: 22, canary: 25}


def test_failed_run_does_not_promote(sandbox: Sandbox, service: str, gate: Callable[..., Any]) -> None:
    stable = sandbox.deploy(service)
    sandbox.deploy(service, tag="canary", no_traffic=True, faults=["stats_500"])
    calls = sandbox.calls("UpdateService")

    g = gate(sandbox.tag_url(service, "canary"), f"--service={service}", "--promote", "10")

    assert g.run.returncode == 1
    assert split_of(sandbox, service) == {stable: 100}
    assert g.json["promotion"]["status"] == "not-promoted"
    assert "promotion (not-promoted): not promoted to 10 %: the verdict is FAIL" in g.output
    # no traffic was sent (a tag-only canary: nothing to roll back either), only its known-bad mark (update_mask annotations)
    assert sandbox.calls("UpdateService") == calls + 1


def test_promote_input_errors(sandbox: Sandbox, service: str, run_suite: Callable[..., Any]) -> None:
    sandbox.deploy(service)
    url = sandbox.service_url(service)
    for args, message in (
        (["--promote", "150"], "--promote '150': give a percent between 1 and 100"),
        (["--promote", "ten"], "--promote 'ten' is not a whole percent (1-100)"),
        (["--promote", "10"], "--promote 10 needs --service (or CLOUD_RUN_SERVICE)"),
    ):
        run = run_suite("tests_smoke", f"--revision-url={url}", *args, env=sandbox.env)
        assert run.returncode == 4, run
        assert message in run.stderr
        assert "Traceback" not in run.output
