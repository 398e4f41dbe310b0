/**
 * deploy/k8s/: every file parses (yaml), has a known kind/apiVersion, and agrees with the app:
 * probe paths are real routes, the grace period covers the drain timeout set in the manifest's
 * env, env vars exist in the config schema and validate, resources are set, selectors match
 * labels, the HPA's Pods metric is a series the app exports.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { EnvSchema, loadConfig } from '../../src/core/config.js';
import { ROOT } from '../helpers/ops.js';
import { startStack, type Stack } from '../helpers/stack.js';

const DIR = path.join(ROOT, 'deploy/k8s');

type Obj = Record<string, any>;

const KNOWN: Record<string, string> = {
  Deployment: 'apps/v1',
  Service: 'v1',
  HorizontalPodAutoscaler: 'autoscaling/v2',
  PodDisruptionBudget: 'policy/v1',
  Kustomization: 'kustomize.config.k8s.io/v1beta1',
};

function load(): Array<{ file: string; doc: Obj }> {
  const out: Array<{ file: string; doc: Obj }> = [];
  for (const file of readdirSync(DIR)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()) {
    const docs = parseAllDocuments(readFileSync(path.join(DIR, file), 'utf8'), { prettyErrors: true });
    for (const d of Array.isArray(docs) ? docs : [docs]) {
      if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
      if (d.warnings.length > 0) throw new Error(`${file}: ${d.warnings.map((e) => e.message).join('; ')}`);
      const doc = d.toJS({ maxAliasCount: 0 }) as Obj | null;
      if (doc) out.push({ file, doc });
    }
  }
  return out;
}

const docs = load();
const one = (kind: string): Obj => {
  const found = docs.filter((d) => d.doc.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!.doc;
};
const subset = (sel: Record<string, string>, labels: Record<string, string>) => Object.entries(sel).every(([k, v]) => labels[k] === v);

/** The container's env as plain strings (secret references get a valid stand-in). */
function envOf(container: Obj): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of container.env as Obj[]) {
    if (typeof e.value === 'string') env[e.name] = e.value;
    else if (e.valueFrom?.secretKeyRef)
      env[e.name] =
        e.name === 'REDIS_URL' ? 'rediss://user:stand-in@redis.invalid:6380/0' : Buffer.from(`stand-in for ${e.name}`).toString('base64');
    else throw new Error(`env ${e.name}: neither value (string) nor secretKeyRef`);
  }
  return env;
}

let stack: Stack;
beforeAll(async () => {
  // The real app (no workers needed) to check probe paths and metric names against.
  stack = await startStack({ env: { IDLE_WORKERS: '0' } });
});
afterAll(async () => {
  await stack?.close();
});

describe('deploy/k8s manifests', () => {
  test('every document parses and has a known kind and apiVersion; kustomization lists every file', () => {
    expect(docs.length).toBeGreaterThanOrEqual(5);
    for (const { file, doc } of docs) {
      expect(Object.keys(KNOWN), `${file}: kind ${doc.kind}`).toContain(doc.kind);
      expect(doc.apiVersion, `${file}: ${doc.kind}`).toBe(KNOWN[doc.kind]);
      if (doc.kind !== 'Kustomization') expect(doc.metadata?.name, file).toBe('patchbay');
    }
    const k = one('Kustomization');
    const files = new Set(docs.filter((d) => d.doc.kind !== 'Kustomization').map((d) => d.file));
    expect(new Set(k.resources)).toEqual(files);
  });

  test('Deployment: selectors match labels; Service, PDB and HPA point at it', () => {
    const dep = one('Deployment');
    const labels = dep.spec.template.metadata.labels as Record<string, string>;
    expect(Object.keys(dep.spec.selector.matchLabels).length).toBeGreaterThan(0);
    expect(subset(dep.spec.selector.matchLabels, labels)).toBe(true);
    const svc = one('Service');
    expect(subset(svc.spec.selector, labels)).toBe(true);
    const container = dep.spec.template.spec.containers[0];
    const portNames = (container.ports as Obj[]).map((p) => p.name);
    for (const p of svc.spec.ports as Obj[]) expect(portNames).toContain(p.targetPort);
    const pdb = one('PodDisruptionBudget');
    expect(subset(pdb.spec.selector.matchLabels, labels)).toBe(true);
    const hpa = one('HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: dep.apiVersion, kind: 'Deployment', name: dep.metadata.name });
    expect(hpa.spec.minReplicas).toBeLessThanOrEqual(hpa.spec.maxReplicas);
    // The PDB must leave room for a voluntary eviction at the HPA's minimum.
    if (pdb.spec.minAvailable !== undefined) expect(pdb.spec.minAvailable).toBeLessThan(hpa.spec.minReplicas);
    else expect(pdb.spec.maxUnavailable).toBeGreaterThanOrEqual(1);
  });

  test('env: every variable exists in the config schema, and together they form a valid config', () => {
    const container = one('Deployment').spec.template.spec.containers[0];
    const env = envOf(container);
    const known = Object.keys(EnvSchema.properties);
    for (const name of Object.keys(env)) expect(known, `env ${name}`).toContain(name);
    const config = loadConfig(env);
    expect(config.port).toBe((container.ports as Obj[]).find((p) => p.name === 'http')!.containerPort);
    expect(config.nodeEnv).toBe('production');
    expect(config.emulator.enabled).toBe(false);
  });

  test('grace period covers preStop + DRAIN_TIMEOUT_MS + closing the workers', () => {
    const spec = one('Deployment').spec.template.spec;
    const container = spec.containers[0];
    const config = loadConfig(envOf(container));
    const preStop = container.lifecycle?.preStop?.exec?.command as string[] | undefined;
    const preStopMs = preStop?.[0] === 'sleep' ? Number(preStop[1]) * 1000 : 0;
    expect(Object.keys(envOf(container))).toContain('DRAIN_TIMEOUT_MS');
    expect(spec.terminationGracePeriodSeconds * 1000).toBeGreaterThanOrEqual(
      preStopMs + config.workers.drainTimeoutMs + 3 * config.workers.closeTimeoutMs,
    );
  });

  test('probes hit routes the app really serves; resources and non-root are set', async () => {
    const dep = one('Deployment');
    const container = dep.spec.template.spec.containers[0];
    expect(container.readinessProbe.httpGet).toEqual({ path: '/health/ready', port: 'http' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/health/live', port: 'http' });
    for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) {
      const { path: p } = probe.httpGet as { path: string };
      expect(stack.rt.app.hasRoute({ method: 'GET', url: p }), p).toBe(true);
      const res = await fetch(`${stack.url}${p}`);
      expect(res.status, p).toBe(200);
    }
    const scrapePath = dep.spec.template.metadata.annotations['prometheus.io/path'];
    expect((await fetch(`${stack.url}${scrapePath}`)).status).toBe(200);
    expect(String(dep.spec.template.metadata.annotations['prometheus.io/port'])).toBe(String(container.ports[0].containerPort));

    for (const c of dep.spec.template.spec.containers as Obj[]) {
      for (const kind of ['requests', 'limits']) {
        expect(c.resources?.[kind]?.cpu, `${c.name} ${kind}.cpu`).toBeDefined();
        expect(c.resources?.[kind]?.memory, `${c.name} ${kind}.memory`).toBeDefined();
      }
    }
    // Every mount has a volume; with a read-only root, the places the service writes are mounted.
    const volumes = new Set((dep.spec.template.spec.volumes as Obj[]).map((v) => v.name));
    const mounts = (container.volumeMounts as Obj[]).map((m) => m.mountPath as string);
    for (const m of container.volumeMounts as Obj[]) expect(volumes, m.name).toContain(m.name);
    if (container.securityContext?.readOnlyRootFilesystem) {
      // /tmp (Chromium, sockets), the user's home (Chromium profile), /app/data (call records).
      expect(mounts).toEqual(expect.arrayContaining(['/tmp', '/home/patchbay', '/app/data']));
    }
    const sc = dep.spec.template.spec.securityContext;
    expect(sc.runAsNonRoot).toBe(true);
    // Same uid as the Dockerfile's user.
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(new RegExp(`useradd [^\\n]*--uid ${sc.runAsUser}\\b`));
  });

  test('HPA: CPU and the Pods metric patchbay_active_bots, which the app exports', async () => {
    const hpa = one('HorizontalPodAutoscaler');
    const metrics = hpa.spec.metrics as Obj[];
    expect(metrics.find((m) => m.type === 'Resource')?.resource?.name).toBe('cpu');
    const pods = metrics.find((m) => m.type === 'Pods');
    expect(pods?.pods?.metric?.name).toBe('patchbay_active_bots');
    const text = await (await fetch(`${stack.url}/metrics`)).text();
    expect(text).toMatch(/^# TYPE patchbay_active_bots gauge$/m);
    // The target is below a replica's bot capacity, so pods are added before calls are refused.
    const dep = one('Deployment');
    const config = loadConfig(envOf(dep.spec.template.spec.containers[0]));
    expect(Number(pods!.pods.target.averageValue)).toBeLessThan(config.admission.maxConcurrentBots);
  });
});
