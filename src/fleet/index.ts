/**
 * Fleet mode (REDIS_URL): see docs/scaling.md. With REDIS_URL unset nothing here is loaded.
 */
export { Fleet } from './fleet.js';
export { registerFleetMetrics, type FleetGaugeSource } from './metrics.js';
export {
  DAILY_RATE_LIMITS,
  LocalRateLimiter,
  parseRateLimits,
  rateClassOf,
  type RateClass,
  type RateLimit,
  type RateLimiter,
  type RateLimits,
  type RatePriority,
} from '../daily/rate-limit.js';
export { RedisRateLimiter } from './rate-limit-redis.js';
export { claimRecord } from './routing.js';
export * from './types.js';
export { RedisCallbacks } from './callbacks.js';
export { FleetOutboundSlots } from './outbound-slots.js';
