# target-restapi as a container: reads Singer messages on stdin, writes STATE to stdout.
#
#   docker build -t target-restapi .
#   docker build -t target-restapi --build-arg EXTRAS=s3 .      # with optional extras
#   tap-x | docker run -i --rm -v "$PWD/config.json:/config/config.json:ro" \
#       -e TARGET_RESTAPI_PASSWORD target-restapi > state.jsonl
#
# Settings: /config/config.json (or $TARGET_RESTAPI_CONFIG_FILE) if present, then
# TARGET_RESTAPI_* environment variables over it; see scripts/entrypoint.sh.

# Build wheels for the target and its dependencies; nothing of this stage is kept.
FROM python:3.11-slim AS build
ARG EXTRAS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY target_restapi ./target_restapi
RUN pip wheel --wheel-dir /wheels ".${EXTRAS:+[$EXTRAS]}"

FROM python:3.11-slim
ARG EXTRAS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
LABEL org.opencontainers.image.title="target-restapi" \
      org.opencontainers.image.description="Singer target that delivers records to any HTTP endpoint" \
      org.opencontainers.image.licenses="Apache-2.0"
# Installed from the build stage's wheels only (BuildKit bind mount: no wheel stays in a layer).
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels "target-restapi${EXTRAS:+[$EXTRAS]}"
COPY --chmod=0755 scripts/entrypoint.sh /usr/local/bin/target-restapi-entrypoint
RUN groupadd --system --gid 10001 target \
    && useradd --system --uid 10001 --gid target --home-dir /home/target --create-home \
       --shell /usr/sbin/nologin target \
    && mkdir -p /config
USER 10001:10001
WORKDIR /home/target
ENTRYPOINT ["/usr/local/bin/target-restapi-entrypoint"]
