# The image the docker backend runs agents in (built on first `gh fleet start` of a docker agent,
# tagged relayfleet:<version>), unless the agent names its own `runtime.image`.
#
# Online (the default):   docker build -t relayfleet:0.1.0 .
# Offline, on a base you already have (no registry, no index; see docs/remote.md):
#   docker build --build-arg BASE=my-local-python:3.11 --build-arg OFFLINE=1 \
#                --build-arg PIP_ARGS="--no-index --no-deps --no-build-isolation" .
ARG BASE=python:3.11-slim
FROM ${BASE}

# OFFLINE=1 skips everything that needs a package registry (apt, npm).
ARG OFFLINE=0
RUN if [ "$OFFLINE" != 1 ]; then \
      apt-get update \
      && apt-get install -y --no-install-recommends git ca-certificates nodejs npm \
      && rm -rf /var/lib/apt/lists/*; \
    fi

# Claude Code from npm when the build is online; an offline build still yields a usable runner
# image (agents with the `command` engine, or a claude mounted in).
ARG INSTALL_CLAUDE=1
RUN if [ "$OFFLINE" != 1 ] && [ "$INSTALL_CLAUDE" = 1 ]; then \
      npm install -g @anthropic-ai/claude-code || echo "claude not installed (offline build)"; \
    fi

# Editable install: the bundled plugins/ next to the package are found the same way as in a
# checkout (core.paths.bundled_plugins_dir). PIP_ARGS lets an offline build install from the
# context alone (e.g. --no-index --no-deps --no-build-isolation on a base that has the deps).
WORKDIR /opt/relayfleet
COPY pyproject.toml README.md ./
COPY relayfleet ./relayfleet
COPY plugins ./plugins
ARG PIP_ARGS=""
RUN python -m pip install --no-cache-dir $PIP_ARGS -e .

ENV HOME=/root
CMD ["python", "-m", "relayfleet.runner", "--help"]
