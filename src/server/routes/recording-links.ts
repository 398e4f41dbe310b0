/**
 * Short-lived signed links to a call's recording (issue 24, item 6; docs/dashboard.md, "Recordings").
 *
 * A link names the call, the recording (a local file name or Daily's recording id) and an expiry
 * (epoch ms), and carries an HMAC-SHA256 of the three: changing any of them breaks the signature.
 * The key is derived from DASHBOARD_TOKEN, so every replica behind one load balancer accepts the
 * links of the others; without a token (loopback-only dashboard) it is random per process, and the
 * links die with it. An `<audio>` element cannot send `Authorization`, so the link is the key:
 * it is handed out only under the dashboard's auth and only for minutes.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** How long a link stays good: a review of one call; the page asks for a fresh one when it lapses. */
export const LINK_TTL_MS = 5 * 60_000;

export interface LinkFields {
  callId: string;
  recordingId: string;
  expiresAtMs: number;
}

/** The signing key: derived from the dashboard token (shared by the replicas), else random for this process. */
export function linkKey(dashboardToken: string | undefined): Buffer {
  return dashboardToken ? createHmac('sha256', 'patchbay recording links v1').update(dashboardToken).digest() : randomBytes(32);
}

const mac = (key: Buffer, f: LinkFields) =>
  createHmac('sha256', key).update(`${f.callId}\n${f.recordingId}\n${f.expiresAtMs}`).digest('base64url');

/** The signature of a link's fields. */
export function signLink(key: Buffer, f: LinkFields): string {
  return mac(key, f);
}

/** The query string of a signed link: `rec`, `exp`, `sig`. */
export function linkQuery(key: Buffer, f: LinkFields): string {
  return new URLSearchParams({ rec: f.recordingId, exp: String(f.expiresAtMs), sig: signLink(key, f) }).toString();
}

/** `ok`, or why the link is refused: its signature does not match its fields, or it has expired. */
export function checkLink(key: Buffer, f: LinkFields, sig: string, nowMs = Date.now()): 'ok' | 'signature' | 'expired' {
  const want = Buffer.from(mac(key, f));
  const got = Buffer.from(sig);
  if (got.length !== want.length || !timingSafeEqual(got, want)) return 'signature';
  return nowMs >= f.expiresAtMs ? 'expired' : 'ok';
}
