# revgate's image: `revgate` as the entrypoint, Playwright's headless Chromium included. A
# service's checklist is mounted or copied to /gate/checklist.toml (the working directory, where
# revgate looks for checklist.toml when --checklist is not given):
#   docker build -t revgate .
#   docker run --rm -v "$PWD/checklist.toml:/gate/checklist.toml:ro" -e REVGATE_AUTH_TOKEN \
#     revgate --revision-url https://TAG---SERVICE-HASH.a.run.app --service S --region R --project P
#
# - The base is pinned to an exact Python and Debian release (bump it on purpose; a digest pin,
#   python:3.11.11-slim-bookworm@sha256:..., is stricter still).
# - The browser lives in PLAYWRIGHT_BROWSERS_PATH, a fixed folder readable by every user, not under
#   $HOME: Cloud Build runs steps with HOME=/builder/home, Cloud Run Jobs with another HOME, and the
#   page checks must find it wherever they run. Only the headless shell is installed (--only-shell:
#   the checks run headless), with its system libraries; apt's lists are removed in the same layer.
# - The gate runs as an unprivileged user (uid 10001). It writes only its reports: give it a
#   writable folder for them (Cloud Build's /workspace belongs to root: see examples/cloudbuild.yaml).
FROM python:3.11.11-slim-bookworm

ENV PLAYWRIGHT_BROWSERS_PATH=/opt/ms-playwright \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

COPY pyproject.toml README.md conftest.py pytest.ini checklist.toml /src/
COPY revgate/ /src/revgate/
COPY rollback/ /src/rollback/
COPY tests_smoke/ /src/tests_smoke/
COPY tests_revision/ /src/tests_revision/
COPY tests_metrics/ /src/tests_metrics/
COPY tests_logs/ /src/tests_logs/
COPY tests_frontend/ /src/tests_frontend/
# the README's install: one pip install of revgate, then the page checks' headless Chromium
RUN pip install --no-cache-dir /src && rm -rf /src
RUN python -m playwright install --with-deps --only-shell chromium \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
    && chmod -R a+rX "$PLAYWRIGHT_BROWSERS_PATH"

RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin revgate \
    && mkdir /gate && chown revgate:revgate /gate
USER 10001
WORKDIR /gate
ENTRYPOINT ["revgate"]
