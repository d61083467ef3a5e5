# The dashboard in a container: slim Python 3.11, a non-root user, the pinned packages of
# `make run` (requirements.txt with constraints.txt), the cache on a volume.
#
#   docker build -t hubspot-crm .
#   docker compose up -d            # settings from .env (copy env.example)
#
# The app listens on 0.0.0.0 inside the container, so it is no longer "loopback only":
# turn staff login on ([auth] in .streamlit/secrets.toml, mounted read-only, plus
# CRM_STAFF_EMAILS or CRM_STAFF_DOMAINS) and put a TLS proxy in front. Without a login
# the app refuses requests that arrive through a proxy unless CRM_OPEN_ACCESS=true.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CRM_DB=/data/crm.db

RUN groupadd --system --gid 10001 crm \
    && useradd --system --uid 10001 --gid crm --home-dir /app --shell /usr/sbin/nologin crm \
    && mkdir -p /app /data \
    && chown crm:crm /data

WORKDIR /app
COPY requirements.txt constraints.txt ./
RUN pip install -r requirements.txt -c constraints.txt

COPY .streamlit/config.toml .streamlit/config.toml
COPY app.py ./
COPY crm crm
COPY ui ui
COPY pages pages

USER crm
# The cache (crm.db with its -wal and -shm files) and, in demo mode, secret.key live here.
VOLUME ["/data"]
EXPOSE 8501

# /healthz answers 200 "ok" when the cache is readable, 503 otherwise; no curl in slim images.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/healthz', timeout=4).status == 200 else 1)"]

CMD ["streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501"]
