# One image for every service process: `trainforge api`, `trainforge worker`, `trainforge migrate`.
# The default PyPI torch wheel brings its own CUDA runtime, so the same image trains on a GPU when the
# container is given one (NVIDIA container toolkit) and on the CPU otherwise.

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

FROM base AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Dependencies first, from pyproject.toml alone: source edits then reuse this (large) layer.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > requirements.txt \
 && pip install -r requirements.txt
COPY trainer_engine trainer_engine
COPY trainforge trainforge
COPY api api
COPY worker worker
RUN pip install --no-deps .

FROM base AS runtime
RUN useradd --create-home --uid 1000 trainforge \
 && mkdir -p /data/artifacts /data/datasets \
 && chown -R trainforge:trainforge /data
COPY --from=build /opt/venv /opt/venv
# Alembic reads its scripts from ./migrations (they are not a Python package).
COPY alembic.ini ./
COPY migrations migrations
ENV PATH=/opt/venv/bin:$PATH \
    TRAINFORGE_ENV=production \
    TRAINFORGE_ARTIFACTS_DIR=/data/artifacts \
    TRAINER_ENGINE_DATA_DIR=/data/datasets
USER trainforge
EXPOSE 8000
ENTRYPOINT ["trainforge"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
