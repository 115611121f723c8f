# kcollect: one image for every command (`kcollect processor`, `kcollect sink`, `kcollect topics create`, ...).
#
#   docker build -t kcollect:local .
#   docker run --rm kcollect:local --help
#
# Stage 1 installs the package and its dependencies into /opt/venv; stage 2 is a clean python:3.11-slim
# with only that venv, run as an unprivileged user. The `local` extra (the Tansu binary) is not installed:
# in a container kcollect talks to a real Kafka and ClickHouse.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first, read from pyproject.toml, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# Then the package itself (README.md is the project's readme: the build needs it).
COPY README.md ./
COPY schemas ./schemas
COPY streams ./streams
COPY producers ./producers
COPY processors ./processors
COPY kcollect ./kcollect
# Smoke test: the CLI starts, and every module imports (services import their dependencies only
# when they start, after `--help` has returned), so a dependency missing from pyproject.toml fails here.
RUN pip install . && kcollect --help > /dev/null \
    && python -c "import importlib, pkgutil; [importlib.import_module(m.name) for p in ('schemas', 'streams', 'producers', 'processors', 'kcollect') for m in pkgutil.walk_packages(importlib.import_module(p).__path__, p + '.') if not m.name.endswith('__main__')]"


FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN groupadd --system --gid 10001 kcollect \
    && useradd --system --uid 10001 --gid kcollect --create-home --home-dir /home/kcollect kcollect

COPY --from=builder /opt/venv /opt/venv

USER 10001:10001

# Services serve /metrics, /healthz and /readyz here when KCOLLECT_HTTP_PORT is set (streams/observability/health.py).
EXPOSE 9100
WORKDIR /home/kcollect

ENTRYPOINT ["kcollect"]
CMD ["--help"]
