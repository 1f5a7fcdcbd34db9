# The image docker-compose.yml runs for `web`, `worker` and `migrate`.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 STATIC_ROOT=/app/staticfiles
COPY pyproject.toml README.md manage.py dev ./
COPY memphisadmin memphisadmin
COPY streams streams
COPY templates templates
COPY static static
RUN pip install --no-cache-dir . \
 && DEBUG=true MEMPHISADMIN_VAR_DIR=/tmp/build python manage.py collectstatic --no-input -v 0 \
 && rm -rf /tmp/build
USER nobody
