/** Shapes of what Daily sends us and what we send Daily (the subset we use). */
import { Type, type Static } from 'typebox';

/** The pinless dial-in webhook body (also probe bodies, hence every field optional here). */
export const PinlessWebhookBody = Type.Object(
  {
    To: Type.Optional(Type.String({ maxLength: 256 })),
    From: Type.Optional(Type.String({ maxLength: 256 })),
    callId: Type.Optional(Type.String({ maxLength: 128 })),
    callDomain: Type.Optional(Type.String({ maxLength: 128 })),
    sipHeaders: Type.Optional(
      Type.Record(Type.String({ maxLength: 128 }), Type.Union([Type.String({ maxLength: 2048 }), Type.Number(), Type.Boolean(), Type.Null()]), {
        maxProperties: 64,
      }),
    ),
    test: Type.Optional(Type.Unknown()),
    Test: Type.Optional(Type.Unknown()),
  },
  { additionalProperties: true },
);
export type PinlessWebhookBody = Static<typeof PinlessWebhookBody>;

/** A webhook that announces a real call. */
export interface PinlessCall {
  to: string;
  from: string;
  callId: string;
  callDomain: string;
  sipHeaders: Record<string, string>;
}

/** Probe bodies: Daily's `{"To": "<number>"}` when dial-in is configured, and the webhook test body. */
export function isProbeBody(body: PinlessWebhookBody): boolean {
  if (body.callId !== undefined || body.callDomain !== undefined || body.From !== undefined) return false;
  if ('test' in body || 'Test' in body) return true;
  const keys = Object.keys(body);
  return keys.length === 1 && keys[0] === 'To';
}

/** Validates a call webhook; returns the missing field names when it is incomplete. */
export function toPinlessCall(body: PinlessWebhookBody): PinlessCall | { missing: string[] } {
  const missing = (['callId', 'callDomain', 'From', 'To'] as const).filter((k) => {
    const v = body[k];
    return typeof v !== 'string' || v.trim().length === 0;
  });
  if (missing.length > 0) return { missing };
  const sipHeaders: Record<string, string> = {};
  for (const [k, v] of Object.entries(body.sipHeaders ?? {})) {
    if (v !== null && v !== undefined) sipHeaders[k] = String(v);
  }
  return { to: body.To!, from: body.From!, callId: body.callId!, callDomain: body.callDomain!, sipHeaders };
}

export interface SipRoomProperties {
  display_name: string;
  video: boolean;
  sip_mode: 'dial-in';
  num_endpoints: number;
}

export interface DailyRoom {
  id: string;
  name: string;
  url: string;
  privacy?: string;
  created_at?: string;
  config: {
    exp?: number;
    sip?: SipRoomProperties;
    sip_uri?: { endpoint: string; extra_endpoints?: string[] };
    [k: string]: unknown;
  };
}
