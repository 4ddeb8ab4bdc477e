#!/bin/sh
# Container entrypoint: run target-restapi on the Singer messages piped to stdin.
#
# Settings, when no --config is given:
#   - the JSON file at $TARGET_RESTAPI_CONFIG_FILE (default /config/config.json), if it
#     exists: mount it read-only;
#   - and TARGET_RESTAPI_<SETTING> environment variables (--config ENV), which win over
#     the file: the place for secrets, e.g. TARGET_RESTAPI_PASSWORD.
# Arguments are passed on as they are: `--config FILE` replaces the defaults above, and
# `--about`, `--version` and `--help` need no settings.
#
#   tap-x | docker run -i --rm -v "$PWD/config.json:/config/config.json:ro" \
#       -e TARGET_RESTAPI_PASSWORD target-restapi > state.jsonl
set -eu

needs_config=yes
for arg in "$@"; do
  case "$arg" in
    --config | --config=* | --about | --about=* | --version | --help) needs_config=no ;;
  esac
done

if [ "$needs_config" = yes ]; then
  config_file="${TARGET_RESTAPI_CONFIG_FILE:-/config/config.json}"
  if [ -f "$config_file" ]; then
    set -- --config "$config_file" --config ENV "$@"
  elif [ -n "${TARGET_RESTAPI_CONFIG_FILE:-}" ]; then
    echo "entrypoint: TARGET_RESTAPI_CONFIG_FILE is '$config_file', which is not a file" >&2
    exit 2
  else
    set -- --config ENV "$@"
  fi
fi

# exec: the target becomes PID 1 and gets `docker stop`'s SIGTERM itself, so it finishes
# the request in flight and emits STATE only for what was delivered.
exec target-restapi "$@"
