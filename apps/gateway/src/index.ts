export { createGateway } from './gateway.js';
export type { Gateway, GatewayDeps, ListeningGateway } from './gateway.js';
export { loadConfig, parseEnvironment, configKeys } from './config/index.js';
export type { Config, Environment } from './config/index.js';
export { createLogger } from './logger.js';
export { createMetrics } from './metrics.js';
export type { GatewayMetrics } from './metrics.js';
