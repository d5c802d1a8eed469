export { serverTlsSettings, TLS12_CIPHERS, TLS13_CIPHERSUITES } from './settings.js';
export type { ServerTlsSettings } from './settings.js';
export { loadCertificatePair, parseCertificatePair, CertificateError } from './certificate.js';
export type { CertificatePair, CertificatePaths } from './certificate.js';
export { generateSelfSigned, ensureSelfSigned, devAltNames } from './selfsigned.js';
export type { SelfSignedOptions, SelfSignedPem } from './selfsigned.js';
export { createCertificateReloader } from './reloader.js';
export type { CertificateReloader, CertificateReloaderOptions, TlsLogger } from './reloader.js';
