export { SmtpError, Replies, isSmtpError } from './errors.js';
export type {
  Backend,
  Session,
  ConnectionInfo,
  Credentials,
  AuthDecision,
  AuthRefusal,
  DataInfo,
} from './session.js';
export { createSmtpServer } from './server.js';
export type { SmtpServer, SmtpServerOptions } from './server.js';
export type { SmtpLimits } from './limits.js';
export type { TlsProvider } from './tls-rotation.js';
export { trustedPeers } from './proxy.js';
export type { Logger } from '@cakemail-smtp/tls';
export type { SmtpEvent, CountHook } from './metrics.js';
export { createMemoryAuthLimiter, createRedisAuthLimiter, MIN_USERNAME_KEY_BYTES } from './auth-limiter/index.js';
export type { AuthLimiter, AuthLimiterOptions } from './auth-limiter/index.js';
export { connectRedis, quitRedis } from './redis.js';
export type { RedisConnectOptions } from './redis.js';
