# syntax=docker/dockerfile:1
#
# patchbay: multi-stage image. Build: compile TypeScript (npm ci, npm run build → dist/), then
# drop dev dependencies. Runtime: Node 22 on Debian bookworm with Debian's Chromium (the daily
# call client drives daily-js in headless Chromium) and espeak-ng (local TTS), as a non-root user.
#
#   docker build -t patchbay .
#   docker run --rm -p 7860:7860 -e DAILY_API_KEY=… -e DAILY_PINLESS_HMAC=… patchbay
#
# Without DAILY_API_KEY the service starts its built-in Daily emulator (development only).

ARG NODE_IMAGE=node:22-bookworm-slim

# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Toolchain for native modules (better-sqlite3) when no prebuilt binary matches.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# .npmrc: onnxruntime-node (the Silero VAD) uses the CPU binaries in its package; no CUDA download.
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
COPY bots ./bots
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force \
 && find node_modules/onnxruntime-node/bin -mindepth 3 -maxdepth 3 -type d ! -path '*/linux/*' -exec rm -rf {} + \
 && case "$(uname -m)" in x86_64) rm -rf node_modules/onnxruntime-node/bin/*/linux/arm64 ;; aarch64) rm -rf node_modules/onnxruntime-node/bin/*/linux/x64 ;; esac

# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# chromium: the daily call client's browser. espeak-ng: local TTS. fonts: Chromium needs one.
# tini: PID 1 that forwards SIGTERM to node and reaps orphans (e.g. a killed worker's Chromium).
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium espeak-ng fonts-liberation ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 patchbay \
 && useradd --system --uid 10001 --gid patchbay --home-dir /home/patchbay --create-home --shell /usr/sbin/nologin patchbay

WORKDIR /app
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=7860 \
    CHROMIUM_PATH=/usr/bin/chromium

# Owned by root, read-only for the service user.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The only place the service writes: call records (CALL_RECORDS_PATH, default ./data/calls.db).
RUN mkdir -p /app/data && chown patchbay:patchbay /app/data

USER patchbay:patchbay
EXPOSE 7860

# Liveness of the process (readiness, which turns 503 while draining, is for the load balancer).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT||7860}/health/live`,{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# SIGTERM starts the drain (readiness 503, live calls finish up to DRAIN_TIMEOUT_MS); a second
# SIGTERM forces exit. tini forwards signals to node only (not to the workers' process group).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/src/app/main.js"]
