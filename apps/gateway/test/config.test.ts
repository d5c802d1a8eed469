import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseEnvironment } from '../src/config/index.js';

describe('parseEnvironment', () => {
  it('has the documented defaults', () => {
    const config = parseEnvironment({});
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
      SHUTDOWN_TIMEOUT_MS: 70_000,
      UPSTREAM_DEADLINE_MS: 60_000,
      MAX_INFLIGHT_BYTES: 33_554_432,
      AUTH_CACHE_TTL_MS: 60_000,
      INFLIGHT_WAIT_MS: 15_000,
      BOUNCE_PARTIAL_FAILURES: 'on',
    });
    expect(config.AUTH_LOCKOUT_KEY).toBeUndefined();
    expect(config.SMTP_HOSTNAME.length).toBeGreaterThan(0);
    expect(config.CAKEMAIL_LIST_ID).toBeUndefined();
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads and coerces the environment; blank values mean default', () => {
    const config = parseEnvironment({ SMTP_PORT: '2525', SMTPS_PORT: '0', CAKEMAIL_LIST_ID: '42', LOG_LEVEL: 'debug', SMTP_HOST: '  ', CAKEMAIL_CONNECTIONS: '512' });
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
    ['PROXY_PROTOCOL', 'v2'],
    ['PROXY_TRUSTED_CIDRS', '10.0.0.0/33'],
    ['PROXY_TRUSTED_CIDRS', '10.0.0.0/8,lb.example'],
    ['PROXY_TRUSTED_CIDRS', 'fd00::/129'],
    ['PROXY_TRUSTED_CIDRS', '10.0.0.0/8,0.0.0.0/0'],
    ['PROXY_TRUSTED_CIDRS', '::/0'],
    ['AUTH_CACHE_TTL_MS', '-1'],
    ['INFLIGHT_WAIT_MS', 'soon'],
    ['BOUNCE_PARTIAL_FAILURES', 'yes'],
  ])('names %s when it is invalid (%j)', (name, value) => {
    let message = '';
    try {
      parseEnvironment({ [name]: value });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    expect(message).toContain(`${name}: `);
    expect(message).toContain(`(got ${JSON.stringify(value)})`);
  });

  it('refuses a CAKEMAIL_API_URL that holds a username or password, and never shows it', () => {
    let message = '';
    try {
      parseEnvironment({ CAKEMAIL_API_URL: 'https://apiuser:S3CR3T-PASS@api.example.com' });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    expect(message).toContain('CAKEMAIL_API_URL: must not hold a username or password');
    expect(message).not.toContain('S3CR3T-PASS');
    expect(parseEnvironment({ CAKEMAIL_API_URL: 'https://api.example.com/' }).CAKEMAIL_API_URL).toBe('https://api.example.com/');
  });

  it('PROXY protocol: off by default; on needs PROXY_TRUSTED_CIDRS, IPv4 and IPv6', () => {
    expect(parseEnvironment({}).PROXY_PROTOCOL).toBe('off');
    expect(() => parseEnvironment({ PROXY_PROTOCOL: 'on' })).toThrow(/PROXY_TRUSTED_CIDRS: required when PROXY_PROTOCOL=on/);
    const config = parseEnvironment({ PROXY_PROTOCOL: 'on', PROXY_TRUSTED_CIDRS: '10.0.0.0/8, 192.0.2.7 ,fd00::/8' });
    expect(config.PROXY_TRUSTED_CIDRS).toEqual(['10.0.0.0/8', '192.0.2.7', 'fd00::/8']);
  });

  it('refuses a per-IP limit that lets one address take every connection', () => {
    expect(() => parseEnvironment({ MAX_CONNECTIONS: '20', MAX_CONNECTIONS_PER_IP: '20' })).toThrow(/MAX_CONNECTIONS_PER_IP: must be lower than MAX_CONNECTIONS/);
    expect(parseEnvironment({ MAX_CONNECTIONS: '0', MAX_CONNECTIONS_PER_IP: '50' }).MAX_CONNECTIONS_PER_IP).toBe(50);
  });

  it('refuses the same port for both listeners', () => {
    expect(() => parseEnvironment({ SMTP_PORT: '2525', SMTPS_PORT: '2525' })).toThrow(/SMTPS_PORT: must differ/);
  });

  it('refuses a shutdown that cannot wait for a relay: SHUTDOWN_TIMEOUT_MS < UPSTREAM_DEADLINE_MS', () => {
    expect(() => parseEnvironment({ SHUTDOWN_TIMEOUT_MS: '30000' })).toThrow(
      'SHUTDOWN_TIMEOUT_MS: must be at least UPSTREAM_DEADLINE_MS (30000 < 60000)',
    );
    expect(() => parseEnvironment({ UPSTREAM_DEADLINE_MS: '90000' })).toThrow(/SHUTDOWN_TIMEOUT_MS: .*UPSTREAM_DEADLINE_MS \(70000 < 90000\)/);
    expect(parseEnvironment({ SHUTDOWN_TIMEOUT_MS: '5000', UPSTREAM_DEADLINE_MS: '5000' }).SHUTDOWN_TIMEOUT_MS).toBe(5000);
  });

  it('refuses MAX_INFLIGHT_BYTES under MAX_MESSAGE_SIZE (a message of an allowed size could never pass); 0 turns the cap off', () => {
    expect(() => parseEnvironment({ MAX_INFLIGHT_BYTES: '1000000', MAX_MESSAGE_SIZE: '2000000' })).toThrow(
      'MAX_INFLIGHT_BYTES: must be 0 or at least MAX_MESSAGE_SIZE (1000000 < 2000000)',
    );
    expect(parseEnvironment({ MAX_INFLIGHT_BYTES: '0' }).MAX_INFLIGHT_BYTES).toBe(0);
  });

  describe('AUTH_LOCKOUT_KEY', () => {
    const key = 'k'.repeat(32);

    it('is required with REDIS_URL, naming both', () => {
      expect(() => parseEnvironment({ REDIS_URL: 'redis://127.0.0.1:6379' })).toThrow('AUTH_LOCKOUT_KEY: required when REDIS_URL is set');
      expect(parseEnvironment({ REDIS_URL: 'redis://127.0.0.1:6379', AUTH_LOCKOUT_KEY: key }).AUTH_LOCKOUT_KEY).toBe(key);
    });

    it('must be at least 32 bytes, and a bad value is named, never shown', () => {
      const short = 'secret-but-short-0123456789';
      let message = '';
      try {
        parseEnvironment({ AUTH_LOCKOUT_KEY: short });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        message = (err as Error).message;
      }
      expect(message).toContain('AUTH_LOCKOUT_KEY: must be at least 32 bytes');
      expect(message).not.toContain(short);
      // Counted in bytes: 16 two-byte characters are enough.
      expect(parseEnvironment({ AUTH_LOCKOUT_KEY: 'é'.repeat(16) }).AUTH_LOCKOUT_KEY).toBe('é'.repeat(16));
    });

    it('is not needed without REDIS_URL', () => {
      expect(parseEnvironment({}).AUTH_LOCKOUT_KEY).toBeUndefined();
    });
  });

  describe('the queue (QUEUE_*)', () => {
    const redis = { REDIS_URL: 'redis://127.0.0.1:6379', AUTH_LOCKOUT_KEY: 'k'.repeat(32) };
    const key = Buffer.alloc(32, 7).toString('base64');

    it('is off by default, with the documented defaults', () => {
      const env = parseEnvironment({});
      expect(env.QUEUE_MODE).toBe('off');
      expect(env.QUEUE_ENCRYPTION_KEY).toBeUndefined();
      expect([env.QUEUE_MAX_BYTES, env.QUEUE_CONCURRENCY, env.QUEUE_RETRY_BASE_MS, env.QUEUE_RETRY_MAX_MS, env.QUEUE_MAX_AGE_MS]).toEqual([
        1_073_741_824, 8, 30_000, 3_600_000, 432_000_000,
      ]);
      expect(loadConfig({}).queue).toBeNull();
    });

    it('refuses a mode other than off, fallback and always', () => {
      expect(() => parseEnvironment({ QUEUE_MODE: 'on' })).toThrow(/QUEUE_MODE: .*"on"/);
    });

    it.each(['fallback', 'always'])('QUEUE_MODE=%s without REDIS_URL and QUEUE_ENCRYPTION_KEY names both missing variables and the mode', (mode) => {
      let message = '';
      try {
        parseEnvironment({ QUEUE_MODE: mode });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        message = (err as Error).message;
      }
      expect(message).toContain(`REDIS_URL: required when QUEUE_MODE=${mode}`);
      expect(message).toContain(`QUEUE_ENCRYPTION_KEY: required when QUEUE_MODE=${mode}`);
      expect(() => parseEnvironment({ QUEUE_MODE: mode, ...redis })).toThrow(`QUEUE_ENCRYPTION_KEY: required when QUEUE_MODE=${mode}`);
      expect(() => parseEnvironment({ QUEUE_MODE: mode, ...redis })).not.toThrow('REDIS_URL: required');
      expect(() => parseEnvironment({ QUEUE_MODE: mode, QUEUE_ENCRYPTION_KEY: key })).toThrow(`REDIS_URL: required when QUEUE_MODE=${mode}`);
      expect(parseEnvironment({ QUEUE_MODE: mode, QUEUE_ENCRYPTION_KEY: key, ...redis }).QUEUE_MODE).toBe(mode);
    });

    it('QUEUE_ENCRYPTION_KEY: a bad key ring is named by position, never shown', () => {
      const short = Buffer.alloc(16, 9).toString('base64');
      const bad = [short, `old:${key},${short}`, 'not base64 at all!', `bad id!:${key}`, `a:${key},a:${key}`];
      for (const value of bad) {
        let message = '';
        try {
          parseEnvironment({ QUEUE_ENCRYPTION_KEY: value });
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError);
          message = (err as Error).message;
        }
        expect(message).toMatch(/QUEUE_ENCRYPTION_KEY: must be a key ring/);
        expect(message).not.toContain(short);
        expect(message).not.toContain(key);
      }
      expect(() => parseEnvironment({ QUEUE_ENCRYPTION_KEY: `old:${key},${short}` })).toThrow('key 2: must be 32 bytes');
      expect(parseEnvironment({ QUEUE_ENCRYPTION_KEY: `new:${key}, old:${Buffer.alloc(32, 1).toString('base64')}` }).QUEUE_ENCRYPTION_KEY).toContain('new:');
    });

    it('QUEUE_RETRY_MAX_MS must be at least QUEUE_RETRY_BASE_MS', () => {
      expect(() => parseEnvironment({ QUEUE_RETRY_BASE_MS: '60000', QUEUE_RETRY_MAX_MS: '1000' })).toThrow(
        'QUEUE_RETRY_MAX_MS: must be at least QUEUE_RETRY_BASE_MS (1000 < 60000)',
      );
      expect(parseEnvironment({ QUEUE_RETRY_BASE_MS: '200', QUEUE_RETRY_MAX_MS: '200' }).QUEUE_RETRY_MAX_MS).toBe(200);
    });

    it('refuses bad numbers, naming the variable', () => {
      expect(() => parseEnvironment({ QUEUE_CONCURRENCY: '0' })).toThrow(/QUEUE_CONCURRENCY: /);
      expect(() => parseEnvironment({ QUEUE_MAX_BYTES: '-1' })).toThrow(/QUEUE_MAX_BYTES: /);
      expect(() => parseEnvironment({ QUEUE_MAX_AGE_MS: 'five days' })).toThrow(/QUEUE_MAX_AGE_MS: /);
      expect(() => parseEnvironment({ QUEUE_RETRY_BASE_MS: '0' })).toThrow(/QUEUE_RETRY_BASE_MS: /);
    });

    it('loadConfig gives the queue section in queue mode', () => {
      const config = loadConfig({ ...redis, QUEUE_MODE: 'always', QUEUE_ENCRYPTION_KEY: key, QUEUE_CONCURRENCY: '3', QUEUE_MAX_AGE_MS: '60000' });
      expect(config.queue).toEqual({
        mode: 'always',
        encryptionKey: key,
        maxBytes: 1_073_741_824,
        concurrency: 3,
        retryBaseMs: 30_000,
        retryMaxMs: 3_600_000,
        maxAgeMs: 60_000,
      });
      expect(Object.isFrozen(config.queue)).toBe(true);
    });
  });
});

describe('loadConfig', () => {
  it('cuts the environment into the sections each part takes, frozen', () => {
    const config = loadConfig({
      SMTPS_PORT: '0',
      CAKEMAIL_LIST_ID: '42',
      BOUNCE_PARTIAL_FAILURES: 'off',
      PROXY_PROTOCOL: 'on',
      PROXY_TRUSTED_CIDRS: '10.0.0.0/8',
      REDIS_URL: 'redis://127.0.0.1:6379',
      AUTH_LOCKOUT_KEY: 'k'.repeat(32),
      SHUTDOWN_TIMEOUT_MS: '90000',
    });
    expect(config.smtp).toEqual({ host: '0.0.0.0', port: 587, securePort: null, hostname: expect.any(String) });
    expect(config.tls).toEqual({ certPath: '/etc/smtp-gateway/tls/tls.crt', keyPath: '/etc/smtp-gateway/tls/tls.key', reloadIntervalMs: 10_000 });
    expect(config.limits).toEqual({
      maxMessageSize: 26_214_400,
      maxRecipients: 100,
      idleTimeoutMs: 60_000,
      handshakeTimeoutMs: 10_000,
      maxConnections: 1000,
      maxConnectionsPerIp: 20,
      sessionMaxMs: 1_800_000,
      maxMessagesPerSession: 100,
      maxJunkCommands: 50,
      maxUnauthenticatedCommands: 10,
      maxAuthFailures: 3,
      bareLf: 'normalize',
      maxInflightBytes: 33_554_432,
      closeTimeoutMs: 90_000,
      maxReplyWaitMs: 60_000,
    });
    expect(config.proxy).toEqual({ trustedCidrs: ['10.0.0.0/8'] });
    expect(config.relay).toEqual({
      apiUrl: 'https://api.cakemail.dev',
      timeoutMs: 10_000,
      connections: 256,
      deadlineMs: 60_000,
      emailType: 'transactional',
      listId: 42,
      authCacheTtlMs: 60_000,
      inflightWaitMs: 15_000,
      bounces: false,
      hostname: config.smtp.hostname,
    });
    expect(config.lockout).toEqual({ pairLimit: 10, ipLimit: 30, windowMs: 900_000, usernameKey: 'k'.repeat(32) });
    expect(config.redis).toEqual({ url: 'redis://127.0.0.1:6379' });
    expect(config.ops).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(config.log).toEqual({ level: 'info', format: 'json' });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.limits)).toBe(true);
  });

  it('leaves out what is off: no implicit-TLS port, no PROXY protocol, no Redis, no list, no lockout key', () => {
    const config = loadConfig({ SMTPS_PORT: '0' });
    expect(config.smtp.securePort).toBeNull();
    expect(config.proxy).toBeNull();
    expect(config.redis).toBeNull();
    expect(config.relay).not.toHaveProperty('listId');
    expect(config.lockout).not.toHaveProperty('usernameKey');
  });

  it('stops the start naming the variable, as parseEnvironment does', () => {
    expect(() => loadConfig({ SMTP_PORT: 'abc' })).toThrow(ConfigError);
    expect(() => loadConfig({ SMTP_PORT: 'abc' })).toThrow(/SMTP_PORT: /);
  });
});
