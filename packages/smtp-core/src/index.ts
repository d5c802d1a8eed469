export { SmtpError, Replies, reply, isSmtpError } from './errors.js';
export type { ReplyName } from './errors.js';
export type {
  Backend,
  Session,
  ConnectionInfo,
  Credentials,
  AuthDecision,
  AuthRefusal,
  AuthMechanism,
  MailOptions,
  DataInfo,
  TlsState,
} from './session.js';
export { createSmtpServer } from './server.js';
export type { SmtpServer, SmtpServerOptions } from './server.js';
export { defaultLimits } from './limits.js';
export type { SmtpLimits } from './limits.js';
export { handshakeReason } from './handshake-errors.js';
export type { TlsProvider } from './tls-rotation.js';
export type { BareLfPolicy } from './data-guard.js';
export { trustedPeers } from './proxy.js';
export { silentLogger } from './logger.js';
export type { Logger } from './logger.js';
export type { SmtpEvent, CountHook } from './metrics.js';
export { createMemoryAuthLimiter, createRedisAuthLimiter, defaultAuthLimits, MIN_USERNAME_KEY_BYTES } from './auth-limiter/index.js';
export type { AuthLimiter, AuthLimiterOptions, AuthLock, RedisAuthLimiterOptions, UsernameKey } from './auth-limiter/index.js';
export { connectRedis } from './redis.js';
export type { RedisConnectOptions } from './redis.js';
