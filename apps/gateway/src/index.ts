export { createGateway } from './gateway.js';
export type { Gateway, GatewayDeps, ListeningGateway } from './gateway.js';
export { loadConfig, ConfigError, configKeys } from './config.js';
export type { Config } from './config.js';
export { createLogger, redactPaths } from './logger.js';
export { createMetrics } from './metrics.js';
export type { GatewayMetrics } from './metrics.js';
export { createOpsServer } from './ops.js';
export type { OpsServer, OpsServerOptions } from './ops.js';
