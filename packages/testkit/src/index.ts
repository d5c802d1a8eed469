export { SmtpTestClient, greeted, ehlo, startTls, authenticated } from './smtp-client.js';
export type { Reply, ClientOptions } from './smtp-client.js';
export { testCertificates, freshCertificates } from './certificates.js';
export type { TestCertificates } from './certificates.js';
export { createMailer } from './mailer.js';
export type { MailerOptions } from './mailer.js';
export * from './fake-cakemail/index.js';
export { startRedisServer, startRedisProxy, testRedis } from './redis-server.js';
export type { TestRedis, RedisProxy } from './redis-server.js';
