"""The examples in examples/ and the Dockerfile: they parse, use only options that exist, match the setup.

What cannot run here (no Docker engine, no Google Cloud): building the image,
GitHub Actions, Cloud Build, Cloud Run Jobs and Cloud Scheduler. The task
selection of the monitoring job runs for real, against the sandbox.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.control import Sandbox

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
YAML_FILES = sorted([*EXAMPLES.rglob("*.yml"), *EXAMPLES.rglob("*.yaml")])
RUN_TARGET = EXAMPLES / "monitoring" / "run_target.py"


@pytest.fixture(scope="module")
def pytest_help() -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def revgate_options_in(text: str) -> set[str]:
    """Every --option written after a 'revgate' command in the text."""
    found: set[str] = set()
    for match in re.finditer(r"(?:^|\s)revgate\b(.*?)(?:\n\s*\n|$)", text, flags=re.S):
        found |= set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", match.group(1)))
    return found


def known(option: str, help_text: str) -> bool:
    """``--opt`` is listed in ``pytest --help`` (first on its line, or an alias after a comma)."""
    return re.search(rf"(^\s+|, ){re.escape(option)}(?![\w-])", help_text, flags=re.M) is not None


@pytest.fixture(scope="module")
def action() -> dict[str, Any]:
    return yaml.safe_load((REPO / "action.yml").read_text())


def test_there_are_examples() -> None:
    names = {p.relative_to(EXAMPLES).as_posix() for p in YAML_FILES}
    assert {"github/gate.yml", "github/monitor.yml", "cloudbuild.yaml"} <= names


def _action_uses(data: Any) -> list[dict[str, Any]]:
    """The workflow steps that use revgate's action."""
    steps = [step for job in data.get("jobs", {}).values() for step in job.get("steps", [])]
    return [step for step in steps if str(step.get("uses", "")).split("@")[0].endswith("/revgate")]


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(EXAMPLES).as_posix())
def test_yaml_parses_and_passes_only_existing_inputs_and_options(
    path: Path, pytest_help: str, action: dict[str, Any]
) -> None:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    options: set[str] = set()
    for text in _strings(data):
        options |= revgate_options_in(text)
    uses = _action_uses(data)
    assert options or uses, f"{path.name} neither runs revgate nor uses its action"
    for step in uses:
        inputs = set(step.get("with", {}))
        assert "revision-url" in inputs
        assert inputs <= set(action["inputs"]), f"{path.name} passes inputs the action does not declare"
        for value in _strings(step.get("with", {})):
            options |= set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", value))
    if not uses:
        assert "--revision-url" in options
    missing = sorted(o for o in options if not known(o, pytest_help))
    assert not missing, f"{path.name} passes options revgate does not know: {missing}"


def test_the_action_is_composite_installs_itself_and_passes_known_options(
    action: dict[str, Any], pytest_help: str
) -> None:
    assert action["runs"]["using"] == "composite"
    text = yaml.safe_dump(action["runs"])
    (install,) = [step for step in action["runs"]["steps"] if step.get("name", "").startswith("Install revgate")]
    assert '/bin/pip" install --quiet "${{ github.action_path }}"' in install["run"]
    used = set(re.findall(r"\$\{\{ inputs\.([\w-]+) \}\}", text))
    assert used <= set(action["inputs"]), used - set(action["inputs"])
    for name in ("revision-url", "service", "region", "project", "checklist", "rollback", "promote", "sections", "extra-args"):
        assert name in action["inputs"] and action["inputs"][name]["description"]
    assert set(action["outputs"]) == {"verdict", "revision", "rollback-status", "report-json"}
    (gate,) = [step for step in action["runs"]["steps"] if step.get("id") == "gate"]
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", gate["run"]))
    missing = sorted(o for o in options if not known(o, pytest_help))
    assert not missing, f"the action passes options revgate does not know: {missing}"


def test_github_workflows_have_their_triggers() -> None:
    gate = yaml.safe_load((EXAMPLES / "github" / "gate.yml").read_text())
    monitor = yaml.safe_load((EXAMPLES / "github" / "monitor.yml").read_text())
    # pyyaml reads the key 'on' as True (YAML 1.1)
    assert "push" in gate[True]
    assert monitor[True]["schedule"][0]["cron"]
    assert [step["with"]["rollback"] for step in _action_uses(monitor)] == ["off"]
    steps = " ".join(_strings(gate["jobs"]))
    assert "--tag" in steps and "NO_TRAFFIC=--no-traffic" in steps
    # the first deploy of a service cannot be --no-traffic (gcloud refuses it): the workflow drops it then
    assert 'gcloud run services describe "$SERVICE"' in steps and "|| NO_TRAFFIC=" in steps
    assert "sleep" not in steps  # the soak is the gate's (rollout, soak), not a blind wait
    canary, rollout = _action_uses(gate)
    assert canary["with"].get("notify") and rollout["with"].get("notify"), "both gates tell the team"
    assert (rollout["with"]["rollout"], rollout["with"]["soak"]) == ("10,50,100", "10m")
    assert "promote" not in canary["with"] and "rollout" not in canary["with"]
    assert canary["with"]["artifact-name"] != rollout["with"]["artifact-name"]
    assert gate["concurrency"]["group"] and gate["concurrency"]["cancel-in-progress"] is False
    assert gate["jobs"]["deploy"]["timeout-minutes"] >= 90


def test_cloud_build_builds_deploys_gates_uploads_and_ends_with_the_gates_exit_code() -> None:
    build = yaml.safe_load((EXAMPLES / "cloudbuild.yaml").read_text())
    ids = [step["id"] for step in build["steps"]]
    assert ids == ["build", "push", "deploy", "gate", "upload-reports", "verdict"]
    text = " ".join(_strings(build["steps"]))
    assert "--publish-metrics" in text and "--rollout 10,50,100 --soak 10m" in text
    assert "$(cat" not in text.replace("$$(cat", "")  # Cloud Build needs $$ for a shell $
    # submitted by hand, SHORT_SHA is empty: nothing may depend on it; _TAG has a default from BUILD_ID
    assert "SHORT_SHA}" not in text and "${SHORT_SHA" not in text and "$SHORT_SHA " not in text
    assert build["substitutions"]["_TAG"] == "b-${BUILD_ID:0:8}" and build["options"]["dynamicSubstitutions"] is True
    assert "${_TAG}" in build["substitutions"]["_APP_IMAGE"]
    # the image is built and pushed here, and its digest is what is deployed and expected
    steps = {step["id"]: step for step in build["steps"]}
    assert steps["build"]["args"][:3] == ["build", "-t", "${_APP_IMAGE}"]
    assert "docker push ${_APP_IMAGE}" in steps["push"]["args"][-1]
    assert '--image "$$(cat /workspace/image)"' in steps["deploy"]["args"][-1]
    assert '--expect-image "$$(cat /workspace/image)"' in steps["gate"]["args"][-1]
    assert "|| NO_TRAFFIC=" in steps["deploy"]["args"][-1]  # a first deploy cannot be --no-traffic
    # the gate step never fails the build itself: the reports are uploaded, then the last step exits with its code
    gate = steps["gate"]["args"][-1]
    assert gate.rstrip().endswith("exit 0") and 'echo "$$code" > /workspace/revgate/exit-code' in gate
    assert "gcloud storage cp /workspace/revgate/*" in steps["upload-reports"]["args"][-1]
    assert "exit $$code" in steps["verdict"]["args"][-1]
    assert "artifacts" not in build  # Cloud Build uploads artifacts only after every step succeeded
    # the soak needs time: the build's and the gate step's timeouts cover 3 steps of up to 30 minutes
    assert int(build["timeout"].rstrip("s")) >= 3 * 30 * 60 and int(steps["gate"]["timeout"].rstrip("s")) >= 3 * 30 * 60
    # the gate's image runs as a non-root user: a root step opens its reports folder
    assert "chmod 777 /workspace/revgate" in steps["deploy"]["args"][-1]


def test_monitoring_job_args_exist(pytest_help: str) -> None:
    script = (EXAMPLES / "monitoring" / "create.sh").read_text()
    (args,) = re.findall(r"--args=(\S+)", script)
    options = {a.split("=", 1)[0] for a in args.split(",")}
    assert options == {"--publish-metrics", "--report-json"}
    for option in options:
        assert known(option, pytest_help)
    assert "--tasks" in script and "gcloud scheduler jobs create http" in script
    job_image = (EXAMPLES / "monitoring" / "Dockerfile").read_text()
    for line in job_image.splitlines():
        if line.startswith("COPY "):
            for name in line.split()[1:-1]:
                assert (EXAMPLES / "monitoring" / name).is_file(), f"the job's Dockerfile copies {name}, not in examples/monitoring"


def test_dockerfile_is_pinned_non_root_with_the_headless_shell_in_a_fixed_place() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    (base,) = re.findall(r"^FROM (\S+)", dockerfile, flags=re.M)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", base), base
    assert re.search(r"^ENV PLAYWRIGHT_BROWSERS_PATH=/\S+", dockerfile, flags=re.M)
    assert "playwright install --with-deps --only-shell chromium" in dockerfile
    install = next(line for line in dockerfile.split("RUN ") if "playwright install" in line)
    assert "rm -rf /var/lib/apt/lists/*" in install, "the apt lists are removed in the layer that made them"
    users = re.findall(r"^USER (\S+)", dockerfile, flags=re.M)
    assert users and users[-1] not in ("root", "0")
    assert dockerfile.index("USER ") < dockerfile.index("ENTRYPOINT")


def test_dockerfile_installs_the_package_as_the_readme_says() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    readme = (REPO / "README.md").read_text()
    assert re.search(r"^ENTRYPOINT \[\"revgate\"\]$", dockerfile, flags=re.M)
    assert "RUN pip install --no-cache-dir /src" in dockerfile
    assert re.search(r"^pip install \S*revgate\S*", readme, flags=re.M), "the README's install line"
    copied = {w.rstrip("/") for line in dockerfile.splitlines() if line.startswith("COPY ") for w in line.split()[1:-1]}
    for path in copied:
        assert (REPO / path).exists(), f"the Dockerfile copies {path}, which does not exist"
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    for path in [*wheel["packages"], *wheel["force-include"], "pyproject.toml", "README.md"]:
        assert path in copied, f"the Dockerfile does not copy {path}, which the wheel needs"


def _select(index: str | None, targets: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "REVGATE_TARGETS": str(targets)}
    if index is not None:
        env["CLOUD_RUN_TASK_INDEX"] = index
    return subprocess.run(
        [sys.executable, str(RUN_TARGET), *extra], env=env, capture_output=True, text=True, timeout=120, cwd=REPO
    )


def test_task_index_selects_the_target(tmp_path: Path) -> None:
    shipped = EXAMPLES / "monitoring" / "targets.toml"
    first = _select(None, shipped, "--print", "--publish-metrics")
    second = _select("1", shipped, "--print")
    assert first.returncode == 0 and second.returncode == 0
    assert shlex.split(first.stdout)[1:3] == ["-m", "revgate"]
    assert shlex.split(first.stdout)[3:] == [
        "--revision-url=https://emergence-abc123-ew.a.run.app",
        "--service=emergence",
        "--region=europe-west1",
        "--project=my-project",
        "--publish-metrics",
    ]
    assert "--service=emergence-admin" in shlex.split(second.stdout)

    outside = _select("2", shipped, "--print")
    assert outside.returncode == 4
    assert outside.stderr.strip() == (
        f"ERROR: CLOUD_RUN_TASK_INDEX 2 is outside the 2 targets of {shipped}: create the job with --tasks 2"
    )
    bad = tmp_path / "targets.toml"
    bad.write_text('[[target]]\nurl = "https://x.a.run.app"\nservise = "x"\n')
    typo = _select("0", bad, "--print")
    assert typo.returncode == 4 and "target 0: unknown key 'servise'" in typo.stderr


def test_task_runs_the_gate_for_its_target_with_rollback_off(
    sandbox: Sandbox, service: str, tmp_path: Path
) -> None:
    stable = sandbox.deploy(service)
    broken = sandbox.deploy(service, tag="canary", no_traffic=True, faults=["stats_500"])
    sandbox.update_traffic(service, to_revisions={stable: 50, broken: 50})
    targets = tmp_path / "targets.toml"
    targets.write_text(
        f'[[target]]\nurl = "{sandbox.service_url(service)}"\n\n'
        f'[[target]]\nurl = "{sandbox.tag_url(service, "canary")}"\nservice = "{service}"\n'
    )
    checklist = tmp_path / "checklist.toml"
    checklist.write_text('[[api]]\nid = "stats"\npath = "/api/memory/user/stats"\n')
    report = tmp_path / "report.json"
    env = {"PATH": "/usr/bin:/bin", "REVGATE_TARGETS": str(targets), "CLOUD_RUN_TASK_INDEX": "1", **sandbox.env}
    proc = subprocess.run(
        [sys.executable, str(RUN_TARGET), "--sections", "smoke", f"--checklist={checklist}", f"--report-json={report}"],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = json.loads(report.read_text())
    assert data["target"]["url"] == sandbox.tag_url(service, "canary")
    assert data["target"]["rollback_mode"] == "off"  # the monitoring default
    assert [c["retries"] for c in data["checks"] if c["name"] == "test_api[stats]"] == [1]
    assert sandbox.traffic(service) and {e["revision"]: e["percent"] for e in sandbox.traffic(service) if e["percent"]} == {
        stable: 50,
        broken: 50,
    }


def test_the_checkout_collects_every_section_of_the_suite() -> None:
    """``pytest --revision-url`` from a checkout runs pytest.ini's testpaths: a folder missing there
    would silently drop that section's checks."""
    from revgate.suite import SECTIONS

    ini = (REPO / "pytest.ini").read_text()
    testpaths = next(line.split("=", 1)[1].split() for line in ini.splitlines() if line.startswith("testpaths"))
    assert testpaths == list(SECTIONS.values())
