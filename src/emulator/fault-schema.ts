/**
 * The emulator's faults vocabulary, defined once: the TypeBox schemas validate the control API's
 * bodies (`POST /_emulator/faults`) and the TS types (`FaultSpec`, `RateLimit`, `DialinReadyMode`,
 * `FaultsUpdate`) are derived from them. To add a fault: a field here, its effect in faults.ts.
 */
import { Type, type Static } from 'typebox';

export const FaultSpecSchema = Type.Object(
  {
    method: Type.Optional(Type.String({ description: 'Default: any method.' })),
    path: Type.String({
      pattern: '^/',
      description: "Path under /v1, e.g. '/rooms' (also matches '/rooms/x'), '/dialin/pinlessCallUpdate'.",
    }),
    status: Type.Optional(
      Type.Integer({ minimum: 100, maximum: 599, description: 'Status to answer with. Omit with `delayMs` for a delay-only fault.' }),
    ),
    times: Type.Optional(Type.Integer({ minimum: 1, description: 'How many requests the fault applies to. Default 1.' })),
    retryAfterSec: Type.Optional(Type.Integer({ minimum: 0, description: 'Retry-After of the answer.' })),
    delayMs: Type.Optional(Type.Integer({ minimum: 0, description: 'Hang before answering (timeouts).' })),
    answerDelayMs: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          'Carry the request out, then hang this long before answering (a late or lost answer: the client times out though the work was done). Not with `status`.',
      }),
    ),
  },
  { additionalProperties: false },
);
/** One injected REST fault. */
export type FaultSpec = Static<typeof FaultSpecSchema>;

export const RateLimitSchema = Type.Object(
  {
    requests: Type.Integer({ minimum: 0, description: 'Requests allowed per window (all /v1 routes together).' }),
    windowMs: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
);
/** A fixed-window limit over all /v1 requests (a fault; Daily's own limits are rate-limits.ts). */
export type RateLimit = Static<typeof RateLimitSchema>;

export const DialinReadyModeSchema = Type.Union([Type.Literal('normal'), Type.Literal('never'), Type.Literal('twice')]);
export type DialinReadyMode = Static<typeof DialinReadyModeSchema>;

/** Body of `POST /_emulator/faults`. */
export const FaultsUpdateSchema = Type.Object(
  {
    inject: Type.Optional(Type.Union([FaultSpecSchema, Type.Array(FaultSpecSchema)])),
    dialinReady: Type.Optional(DialinReadyModeSchema),
    dialinReadyDelayMs: Type.Optional(Type.Integer({ minimum: 0 })),
    rateLimit: Type.Optional(Type.Union([RateLimitSchema, Type.Null()])),
  },
  { additionalProperties: false },
);
export type FaultsUpdate = Static<typeof FaultsUpdateSchema>;
