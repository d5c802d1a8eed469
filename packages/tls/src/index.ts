export { serverTlsSettings } from './settings.js';
export { generateSelfSigned, ensureSelfSigned } from './selfsigned.js';
export { createCertificateReloader } from './reloader.js';
export type { CertificateReloader } from './reloader.js';
export { silentLogger } from './logger.js';
export type { Logger } from './logger.js';
