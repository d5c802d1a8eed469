/**
 * `smtp-gateway start` (production, from the environment) and
 * `smtp-gateway dev` (development defaults and the embedded fake upstream):
 * loads the configuration, listens, and drains on SIGTERM or SIGINT.
 * Resolves with the exit code.
 */
import { ConfigError, loadConfig, type Config } from './config/index.js';
import { DEV_UPSTREAM_PORT, DevToolingMissing, devBanner, devDefaults, startDevUpstream, type DevUpstream } from './dev.js';
import { createGateway } from './gateway.js';
import { createLogger } from './logger.js';

export async function serve(command: 'start' | 'dev', env: NodeJS.ProcessEnv): Promise<number> {
  const dev = command === 'dev';
  const embedUpstream = dev && !env['CAKEMAIL_API_URL'];

  let config: Config;
  try {
    config = loadConfig(env, dev ? devDefaults : {});
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`smtp-gateway: ${err.message}\n`);
      return 1;
    }
    throw err;
  }

  const logger = createLogger(config.log);
  let upstream: DevUpstream | undefined;
  if (embedUpstream) {
    const port = Number(env['DEV_UPSTREAM_PORT'] || DEV_UPSTREAM_PORT);
    try {
      upstream = await startDevUpstream(config.smtp.host === '0.0.0.0' ? '127.0.0.1' : config.smtp.host, port);
    } catch (err) {
      if (err instanceof DevToolingMissing) {
        process.stderr.write(`smtp-gateway: ${err.message}\n`);
        return 1;
      }
      throw err;
    }
    config = Object.freeze({ ...config, relay: Object.freeze({ ...config.relay, apiUrl: upstream.url }) });
  }

  const gateway = createGateway(config, { logger, ...(upstream ? { onRelayed: upstream.onRelayed } : {}) });
  let listening;
  try {
    listening = await gateway.listen();
  } catch (err) {
    logger.fatal({ err: err instanceof Error ? err.message : String(err) }, 'gateway failed to start');
    await gateway.close().catch(() => {});
    await upstream?.close();
    return 1;
  }
  logger.info(
    {
      smtpPort: listening.smtpPort,
      smtpsPort: listening.smtpsPort,
      opsPort: listening.opsPort,
      upstream: config.relay.apiUrl,
      queue: config.queue?.mode ?? 'off',
    },
    'gateway ready',
  );
  if (dev) process.stdout.write(`${devBanner(config, upstream, { smtp: listening.smtpPort, smtps: listening.smtpsPort, ops: listening.opsPort })}\n`);

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal, exiting now');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, 'shutting down');
      void gateway
        .close()
        .then(() => upstream?.close())
        .finally(resolve);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  logger.info({}, 'stopped');
  return 0;
}
