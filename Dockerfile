# The image the docker backend runs agents in (built on first `gh fleet start` of a docker agent,
# tagged relayfleet:<version>), unless the agent names its own `runtime.image`.
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates nodejs npm \
 && rm -rf /var/lib/apt/lists/*

# Claude Code from npm when the build is online; an offline build still yields a usable runner
# image (agents with the `command` engine, or a claude mounted in).
ARG INSTALL_CLAUDE=1
RUN if [ "$INSTALL_CLAUDE" = 1 ]; then \
      npm install -g @anthropic-ai/claude-code || echo "claude not installed (offline build)"; \
    fi

# Editable install: the bundled plugins/ next to the package are found the same way as in a
# checkout (core.paths.bundled_plugins_dir).
WORKDIR /opt/relayfleet
COPY pyproject.toml README.md ./
COPY relayfleet ./relayfleet
COPY plugins ./plugins
RUN pip install --no-cache-dir -e .

ENV HOME=/root
CMD ["python", "-m", "relayfleet.runner", "--help"]
