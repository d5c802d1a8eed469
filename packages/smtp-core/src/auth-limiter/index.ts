export { createMemoryAuthLimiter } from './limiter.js';
export type { AuthLimiter, AuthLimiterOptions, AuthLimiterOperation, AuthLock } from './limiter.js';
export { createRedisAuthLimiter } from './redis.js';
export type { RedisAuthLimiterOptions } from './redis.js';
export { usernameHash, MIN_USERNAME_KEY_BYTES } from './keys.js';
export type { UsernameKey } from './keys.js';
