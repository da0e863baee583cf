# The vibrasense image: the API (`vibrasense serve`), the pipeline job and the MLflow tracking server.
# Builder stage: the dependencies (CPU PyTorch), then the app as a wheel, installed into /opt/venv.
# Final stage: Python, that venv and a non-root user; no compiler, no pip cache, no build secrets.
#
# The CPU torch wheel is taken from .docker-wheels/ when one lies there (scripts/docker-up.sh puts it there from
# pip's find-links); else from PIP_EXTRA_INDEX_URL (default: PyTorch's CPU index). A TLS-inspecting proxy's CA
# bundle comes in as the build secret `ca_bundle`, for pip only.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS builder
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_INDEX_URL=${PIP_INDEX_URL} PIP_EXTRA_INDEX_URL=${PIP_EXTRA_INDEX_URL} \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_DEFAULT_TIMEOUT=180
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
WORKDIR /src
# the glob lets the build run without .docker-wheels/ (a fresh clone): torch then comes from the index
COPY pyproject.toml .docker-wheel[s] /wheels/
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
    && if ls /wheels/torch-*.whl >/dev/null 2>&1; then /opt/venv/bin/pip install /wheels/torch-*.whl; fi \
    && /opt/venv/bin/pip install "setuptools>=69" wheel
# the dependencies (pyproject.toml's list) in a layer of their own: a change to src/ rebuilds only the app's wheel
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
    && /opt/venv/bin/python -c "import tomllib; print(*tomllib.load(open('/wheels/pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" > /tmp/requirements.txt \
    && /opt/venv/bin/pip install -r /tmp/requirements.txt
COPY pyproject.toml README.md ./
COPY src/ src/
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
    && /opt/venv/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /dist . \
    && /opt/venv/bin/pip install /dist/vibrasense-*.whl

FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 vibrasense \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin vibrasense \
    && install -d -o vibrasense -g vibrasense /var/lib/vibrasense /var/lib/mlflow
COPY --from=builder /opt/venv /opt/venv
COPY deploy/pipeline/ /opt/vibrasense/pipeline/
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 VIBRASENSE_WORKDIR=/var/lib/vibrasense \
    VIBRASENSE_SERVING__HOST=0.0.0.0 MPLCONFIGDIR=/tmp/matplotlib GIT_PYTHON_REFRESH=quiet
USER 10001:10001
WORKDIR /var/lib/vibrasense
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=6 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["vibrasense", "serve"]
