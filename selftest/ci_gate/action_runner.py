"""Runs the GitHub Action's shell steps as a runner does: ``Job(root, env, venv).use(**inputs)``.

No GitHub runner here: the steps of ``action.yml`` that are shell (``run:``) are
run with bash, in order, their ``${{ ... }}`` expressions filled in from the
inputs and the outputs of the steps before, each with its own
``$GITHUB_OUTPUT`` file, as the runner does. The ``uses:`` steps
(setup-python, the cache, the upload) and the install are what the runner and
pip do; revgate's virtual environment is the one given.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
ACTION = yaml.safe_load((REPO / "action.yml").read_text())
STEPS = ACTION["runs"]["steps"]


class Job:
    """One job of a runner: its temp folder, workspace, and the action's uses in it."""

    def __init__(self, root: Path, env: dict[str, str], *, venv: Path | None = None, workspace: Path | None = None) -> None:
        self.temp = root / "runner-temp"
        self.workspace = workspace or root / "workspace"
        self.temp.mkdir()
        self.workspace.mkdir(exist_ok=True)
        (self.temp / "revgate-venv").symlink_to(venv or Path(sys.prefix))  # what the install step makes
        self.env = env
        self.uses = 0

    def _value(self, expr: str, inputs: dict[str, str], steps: dict[str, dict[str, str]]) -> str:
        expr = expr.strip()
        if "||" in expr:
            return next((v for v in (self._value(p, inputs, steps) for p in expr.split("||")) if v), "")
        if m := re.fullmatch(r"format\('([^']*)',\s*(.+)\)", expr):
            return m.group(1).replace("{0}", self._value(m.group(2), inputs, steps))
        if m := re.fullmatch(r"'([^']*)'|(\d+)", expr):
            return m.group(1) if m.group(1) is not None else m.group(2)
        if m := re.fullmatch(r"inputs\.([\w-]+)", expr):
            return inputs.get(m.group(1), str(ACTION["inputs"][m.group(1)].get("default", "")))
        if m := re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expr):
            return steps.get(m.group(1), {}).get(m.group(2), "")
        return {"runner.temp": str(self.temp), "github.action_path": str(REPO), "runner.os": "Linux"}[expr]

    def render(self, text: str, inputs: dict[str, str], steps: dict[str, dict[str, str]]) -> str:
        return re.sub(r"\$\{\{(.*?)\}\}", lambda m: self._value(m.group(1), inputs, steps), text)

    def use(self, **inputs: str) -> dict[str, Any]:
        """One use of the action: its shell steps in order; returns the action's outputs and exit code."""
        self.uses += 1
        inputs = {k.replace("_", "-"): v for k, v in inputs.items()}
        steps: dict[str, dict[str, str]] = {"python": {"python-path": sys.executable, "python-version": "3.11"}}
        code = None
        for index, step in enumerate(STEPS):
            if "run" not in step or step.get("name", "").startswith("Install revgate"):
                continue
            out = self.temp / f"output-{self.uses}-{index}"
            out.write_text("")
            env = {
                **self.env,
                "RUNNER_TEMP": str(self.temp),
                "GITHUB_OUTPUT": str(out),
                "GITHUB_JOB": "deploy",
                "GITHUB_ACTION_PATH": str(REPO),
                "GITHUB_WORKSPACE": str(self.workspace),
            }
            env.update({k: self.render(str(v), inputs, steps) for k, v in (step.get("env") or {}).items()})
            script = self.render(step["run"], inputs, steps)
            proc = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                cwd=self.workspace, env=env, capture_output=True, text=True, timeout=240,
            )
            if step.get("id"):
                steps[step["id"]] = dict(
                    line.split("=", 1) for line in out.read_text().splitlines() if "=" in line
                )
            if step.get("name") == "The gate's exit code":
                code = proc.returncode
            elif proc.returncode != 0:
                raise AssertionError(f"step {step.get('name') or step.get('id')} failed: {proc.stdout}{proc.stderr}")
            steps.setdefault("_log", {})[str(index)] = proc.stdout + proc.stderr
        outputs = {name: self.render(spec["value"], inputs, steps) for name, spec in ACTION["outputs"].items()}
        return {"outputs": outputs, "code": code, "steps": steps}
