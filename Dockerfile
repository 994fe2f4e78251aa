# One image for every process of the ledger; compose.yaml picks the module per service.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    PATH=/app/.venv/bin:$PATH \
    HOST=0.0.0.0 \
    LOG_FORMAT=json

WORKDIR /app

# The runtime packages of uv.lock (no ops or dev extras), at their locked versions and
# hashes, in a layer that only a change of the lock rebuilds. pip only brings uv itself,
# at the version the lock names.
COPY pyproject.toml uv.lock README.md ./
RUN pip install "uv==$(python -c 'import tomllib; print(next(p["version"] for p in tomllib.load(open("uv.lock", "rb"))["package"] if p["name"] == "uv"))')" \
    && uv sync --locked --no-install-project --no-editable

# Only what the services need (.dockerignore keeps tests, bench and tooling out).
COPY shared_kernel ./shared_kernel
COPY command_service ./command_service
COPY query_service ./query_service
COPY projector ./projector
COPY schema ./schema
RUN uv sync --locked --no-editable && pip uninstall --yes uv && useradd --system --uid 10001 ledger

USER ledger
EXPOSE 8001 8002 8003 8004

# compose.yaml overrides this per service (relay, projector, query, migrate).
CMD ["python", "-m", "command_service"]
