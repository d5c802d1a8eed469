#!/usr/bin/env node
/**
 * The command line: `smtp-gateway start` (production, from the environment)
 * or `smtp-gateway dev` (development defaults and the embedded fake upstream).
 * The only place that reads process.env, listens and handles signals.
 */
import { ConfigError, configKeys, loadConfig, type Config } from './config/index.js';
import { DEV_UPSTREAM_PORT, DevToolingMissing, devBanner, devDefaults, startDevUpstream, type DevUpstream } from './dev.js';
import { runDoctor } from './doctor/index.js';
import { createGateway } from './gateway.js';
import { createLogger } from './logger.js';

const usage = `usage: smtp-gateway [start|dev|doctor|--help]

  start   run from the environment (production)
  dev     development defaults: ports 2587/2465, self-signed certificate in .dev/tls,
          readable logs, and an embedded fake Cakemail API unless CAKEMAIL_API_URL is set
  doctor  check a Cakemail login (and, with --smtp, a running gateway); doctor --help

environment: ${configKeys.join(', ')}
`;

async function main(argv: string[]): Promise<number> {
  const command = argv[0] ?? 'start';
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(usage);
    return 0;
  }
  if (command === 'doctor') return runDoctor(argv.slice(1), { env: process.env, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
  if (command !== 'start' && command !== 'dev') {
    process.stderr.write(`unknown command ${JSON.stringify(command)}\n${usage}`);
    return 2;
  }
  const dev = command === 'dev';
  const embedUpstream = dev && !process.env['CAKEMAIL_API_URL'];

  let config: Config;
  try {
    config = loadConfig(process.env, dev ? devDefaults : {});
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
    const port = Number(process.env['DEV_UPSTREAM_PORT'] || DEV_UPSTREAM_PORT);
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
    { smtpPort: listening.smtpPort, smtpsPort: listening.smtpsPort, opsPort: listening.opsPort, upstream: config.relay.apiUrl },
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

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`smtp-gateway: fatal: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
