#!/usr/bin/env bash
# The whole test suite, as CI runs it: system packages, the venv, ruff, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the end-to-end tests use: a real sshd, tmux, a real dockerd, gh.
need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v tmux >/dev/null || need+=(tmux)
command -v dockerd >/dev/null || need+=(docker.io)
command -v busybox >/dev/null || need+=(busybox-static)
command -v tini >/dev/null || [ -x /usr/bin/docker-init ] || need+=(tini)
command -v gh >/dev/null || need+=(gh)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test.sh: installing ${need[*]}" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${need[@]}") >&2 ||
      echo "test.sh: could not install ${need[*]}; tests that need them will skip" >&2
  else
    echo "test.sh: missing ${need[*]} (not root); tests that need them will skip" >&2
  fi
fi

# The same private venv the gh-fleet launcher makes, with the dev extra.
GH_FLEET_EXTRAS=dev ./gh-fleet --version >/dev/null
py="${GH_FLEET_VENV:-$PWD/.venv}/bin/python"

# Recorded GitHub webhook payloads for the receiver's tests (npm, cached beside Claude Code).
"$py" -m tests.webhook_examples >/dev/null ||
  echo "test.sh: @octokit/webhooks-examples not installed; its tests will skip" >&2

"$py" -m ruff check .
"$py" -m ruff format --check .
"$py" -m mypy

set +e
"$py" -m pytest -n "${RELAYFLEET_TEST_WORKERS:-4}" --dist loadfile "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
  echo "test.sh: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$rc"
