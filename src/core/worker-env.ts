/**
 * What runs in the environment of a worker process needs none of the service's secrets: a worker
 * gets its configuration (the Daily key it needs included) in the IPC `init` message. So a worker
 * is forked with this minimal environment: the system basics Node, Chromium and espeak-ng read
 * (PATH, HOME, temp dirs, locale, time zone, TLS trust, NODE_OPTIONS for loaders), plus the names
 * listed in WORKER_ENV_PASSTHROUGH.
 */
const WORKER_ENV = new Set(
  [
    'PATH HOME USER LOGNAME SHELL TERM TMPDIR TMP TEMP TZ LANG LANGUAGE',
    'NODE_ENV NODE_OPTIONS NODE_EXTRA_CA_CERTS SSL_CERT_FILE SSL_CERT_DIR',
    'XDG_RUNTIME_DIR XDG_CACHE_HOME XDG_CONFIG_HOME XDG_DATA_HOME FONTCONFIG_PATH FONTCONFIG_FILE',
    'DISPLAY LD_LIBRARY_PATH PLAYWRIGHT_BROWSERS_PATH TSX_TSCONFIG_PATH',
  ]
    .join(' ')
    .split(' '),
);

/** The names of `env` a worker keeps: WORKER_ENV, `LC_*` and `extra` (WORKER_ENV_PASSTHROUGH). */
export function pickWorkerEnv(env: NodeJS.ProcessEnv, extra: readonly string[]): NodeJS.ProcessEnv {
  const passthrough = new Set(extra);
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && (WORKER_ENV.has(k) || k.startsWith('LC_') || passthrough.has(k))) out[k] = v;
  }
  return out;
}
