# revgate's image: `revgate` as the entrypoint, Chromium included. A service's
# checklist is mounted or copied to /gate/checklist.toml (the working directory,
# where revgate looks for checklist.toml when --checklist is not given):
#   docker build -t revgate .
#   docker run --rm -v "$PWD/checklist.toml:/gate/checklist.toml:ro" -e REVGATE_AUTH_TOKEN \
#     revgate --revision-url https://TAG---SERVICE-HASH.a.run.app --service S --region R --project P
FROM python:3.11-slim

COPY pyproject.toml README.md conftest.py pytest.ini checklist.toml /src/
COPY revgate/ /src/revgate/
COPY rollback/ /src/rollback/
COPY tests_smoke/ /src/tests_smoke/
COPY tests_revision/ /src/tests_revision/
COPY tests_metrics/ /src/tests_metrics/
COPY tests_logs/ /src/tests_logs/
COPY tests_frontend/ /src/tests_frontend/
# the README's install: one pip install of revgate, then the browser checks' Chromium
RUN pip install --no-cache-dir /src && rm -rf /src
RUN python -m playwright install --with-deps chromium

WORKDIR /gate
ENTRYPOINT ["revgate"]
