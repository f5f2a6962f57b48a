# Production image: granian (WSGI) serving prod settings; the same image runs the Celery worker and beat.
# deploy/entrypoint.sh turns the secret files into environment variables, then runs the command.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH="/app/.venv/bin:$PATH"

WORKDIR /app
RUN pip install --no-cache-dir "uv==0.13.9" \
    && useradd --create-home --uid 10001 portal

COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

COPY . .
RUN DJANGO_SETTINGS_MODULE=config.settings.dev DJANGO_SECRET_KEY=build-only python manage.py collectstatic --noinput \
    && chmod 0755 deploy/entrypoint.sh \
    && chown -R portal:portal /app
USER portal

EXPOSE 8000
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
# The web server (docker-compose.yml's `web` service sets the same; change it there or here).
# granian: more requests per core than gunicorn gthread in the same `make bench` run (bench/README.md).
# Workers and threads from GRANIAN_WORKERS / GRANIAN_BLOCKING_THREADS; gunicorn stays available:
# ["gunicorn", "--config", "deploy/gunicorn.conf.py", "config.wsgi:application"].
ENV GRANIAN_WORKERS=2 \
    GRANIAN_BLOCKING_THREADS=4
CMD ["granian", "--interface", "wsgi", "--host", "0.0.0.0", "--port", "8000", "--backlog", "2048", "--access-log", "--no-ws", "config.wsgi:application"]
