# One image for every process of the ledger; compose.yaml picks the module per service.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0

WORKDIR /app

# Only what the services need (.dockerignore keeps tests, bench and tooling out).
COPY pyproject.toml README.md ./
COPY shared_kernel ./shared_kernel
COPY command_service ./command_service
COPY query_service ./query_service
COPY projector ./projector
COPY schema ./schema
RUN pip install . && useradd --system --uid 10001 ledger

USER ledger
EXPOSE 8001 8002 8003 8004

# compose.yaml overrides this per service (relay, projector, query, migrate).
CMD ["python", "-m", "command_service"]
