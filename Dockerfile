# The revgate suite image: a CI gate step, or the scheduled monitoring Cloud Run Job
# (examples/monitoring). The setup is the README's "Using it" lines.
FROM python:3.11-slim

WORKDIR /revgate
COPY requirements.txt pyproject.toml ./
RUN pip install --no-cache-dir -r requirements.txt
# the browser checks' Chromium, with the system libraries it needs
RUN python -m playwright install --with-deps chromium

COPY pytest.ini conftest.py checklist.toml ./
COPY revgate/ revgate/
COPY rollback/ rollback/
COPY tests_smoke/ tests_smoke/
COPY tests_metrics/ tests_metrics/
COPY tests_frontend/ tests_frontend/
COPY examples/monitoring/ examples/monitoring/
# the -e registers revgate's options early (pytest11 entry point)
RUN pip install --no-cache-dir --no-deps -e .

# A monitoring job task: the target of CLOUD_RUN_TASK_INDEX in $REVGATE_TARGETS.
# As a CI gate step: --entrypoint pytest, then the gate's arguments.
ENV REVGATE_TARGETS=/revgate/examples/monitoring/targets.toml
ENTRYPOINT ["python", "examples/monitoring/run_target.py"]
