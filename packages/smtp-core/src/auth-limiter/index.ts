export { createMemoryAuthLimiter, defaultAuthLimits } from './limiter.js';
export type { AuthLimiter, AuthLimiterOptions, AuthLimiterOperation, AuthLock } from './limiter.js';
export { createRedisAuthLimiter, defaultRedisKeyPrefix } from './redis.js';
export type { RedisAuthLimiterOptions } from './redis.js';
export { normalizeIp, normalizeUsername, usernameHash, MIN_USERNAME_KEY_BYTES } from './keys.js';
export type { UsernameKey } from './keys.js';
