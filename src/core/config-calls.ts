/** Outbound calls and call recording (`Config['outbound']`, `Config['call']['recording']`), from the environment `config.ts` read. */
import path from 'node:path';
import type { Env } from './config-schema.js';

export interface OutboundConfig {
  apiToken: string | undefined;
  maxConcurrent: number;
  /** OUTBOUND_FLEET_MAX_CONCURRENT (fleet mode): the fleet-wide cap; undefined → per replica only. */
  fleetMaxConcurrent: number | undefined;
  maxAttempts: number;
  retryMs: number;
  ringTimeoutMs: number;
  statusUrl: string | undefined;
  webhookSecret: string | undefined;
  detectVoicemail: boolean;
  /** CALLBACK_OFFER: callers past the hold budget are offered a callback (src/admission/callback-offer.ts). */
  callbackOffer: boolean;
  callbackOfferMaxConcurrent: number;
}

export interface RecordingConfig {
  mode: 'off' | 'daily' | 'local';
  dir: string;
  dailyRooms: boolean;
  retentionDays: number;
}

export function outboundConfig(e: Env): OutboundConfig {
  return {
    apiToken: e.CALLS_API_TOKEN,
    maxConcurrent: e.OUTBOUND_MAX_CONCURRENT,
    fleetMaxConcurrent: e.OUTBOUND_FLEET_MAX_CONCURRENT,
    maxAttempts: e.OUTBOUND_MAX_ATTEMPTS,
    retryMs: e.OUTBOUND_RETRY_MS,
    ringTimeoutMs: e.OUTBOUND_RING_TIMEOUT_MS,
    statusUrl: e.OUTBOUND_STATUS_URL,
    webhookSecret: e.OUTBOUND_WEBHOOK_SECRET,
    detectVoicemail: e.VOICEMAIL_DETECT,
    callbackOffer: e.CALLBACK_OFFER,
    callbackOfferMaxConcurrent: e.CALLBACK_OFFER_MAX_CONCURRENT,
  };
}

/** RECORDING and its settings; RECORDINGS_DIR defaults to `recordings/` beside the call records (./data without a file). */
export function recordingConfig(e: Env): RecordingConfig {
  const records = e.CALL_RECORDS_PATH === 'off' || e.CALL_RECORDS_PATH === ':memory:' ? './data' : path.dirname(e.CALL_RECORDS_PATH);
  return {
    mode: e.RECORDING,
    dir: e.RECORDINGS_DIR ?? path.join(records, 'recordings'),
    dailyRooms: e.DAILY_RECORDING_ROOMS ?? e.RECORDING === 'daily',
    retentionDays: e.RECORDING_RETENTION_DAYS,
  };
}
