import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      SMTP_HOST: '0.0.0.0',
      SMTP_PORT: 587,
      SMTPS_PORT: 465,
      TLS_CERT_PATH: '/etc/smtp-gateway/tls/tls.crt',
      TLS_KEY_PATH: '/etc/smtp-gateway/tls/tls.key',
      LOG_LEVEL: 'info',
      CAKEMAIL_API_URL: 'https://api.cakemail.dev',
      CAKEMAIL_EMAIL_TYPE: 'transactional',
      MAX_MESSAGE_SIZE: 26_214_400,
      MAX_RECIPIENTS: 100,
      CAKEMAIL_CONNECTIONS: 256,
      BARE_LF_POLICY: 'normalize',
      AUTH_CACHE_TTL_MS: 60_000,
      INFLIGHT_WAIT_MS: 15_000,
      BOUNCE_PARTIAL_FAILURES: 'on',
    });
    expect(config.SMTP_HOSTNAME.length).toBeGreaterThan(0);
    expect(config.CAKEMAIL_LIST_ID).toBeUndefined();
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads and coerces the environment; blank values mean default', () => {
    const config = loadConfig({ SMTP_PORT: '2525', SMTPS_PORT: '0', CAKEMAIL_LIST_ID: '42', LOG_LEVEL: 'debug', SMTP_HOST: '  ', CAKEMAIL_CONNECTIONS: '512' });
    expect(config.SMTP_PORT).toBe(2525);
    expect(config.SMTPS_PORT).toBe(0);
    expect(config.CAKEMAIL_LIST_ID).toBe(42);
    expect(config.LOG_LEVEL).toBe('debug');
    expect(config.SMTP_HOST).toBe('0.0.0.0');
    expect(config.CAKEMAIL_CONNECTIONS).toBe(512);
  });

  it.each([
    ['SMTP_PORT', 'abc'],
    ['SMTP_PORT', '70000'],
    ['SMTPS_PORT', '-1'],
    ['LOG_LEVEL', 'loud'],
    ['CAKEMAIL_API_URL', 'ftp://x'],
    ['CAKEMAIL_EMAIL_TYPE', 'newsletter'],
    ['MAX_RECIPIENTS', '0'],
    ['CAKEMAIL_CONNECTIONS', '0'],
    ['CAKEMAIL_CONNECTIONS', 'many'],
    ['BARE_LF_POLICY', 'ignore'],
    ['SMTP_HOSTNAME', 'bad host\r\nname'],
    ['AUTH_CACHE_TTL_MS', '-1'],
    ['INFLIGHT_WAIT_MS', 'soon'],
    ['BOUNCE_PARTIAL_FAILURES', 'yes'],
  ])('names %s when it is invalid (%j)', (name, value) => {
    let message = '';
    try {
      loadConfig({ [name]: value });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    expect(message).toContain(`${name}: `);
    expect(message).toContain(`(got ${JSON.stringify(value)})`);
  });

  it('refuses the same port for both listeners', () => {
    expect(() => loadConfig({ SMTP_PORT: '2525', SMTPS_PORT: '2525' })).toThrow(/SMTPS_PORT: must differ/);
  });
});
