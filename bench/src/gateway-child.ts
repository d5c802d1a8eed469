/**
 * Child process: the gateway, as `smtp-gateway start` runs it (config from the environment, pino JSON logs to
 * stdout, which the bench sends to /dev/null), with its ports reported over IPC.
 */
import { createGateway, createLogger, loadConfig } from '@cakemail-smtp/gateway';
import { exitWithParent, sendToParent } from './ipc.js';

exitWithParent();
const config = loadConfig(process.env);
const logger = createLogger(config.log);
const gateway = createGateway(config, { logger });
const ports = await gateway.listen();

process.once('SIGTERM', () => {
  // process.exit() (not a hang on the IPC channel) so that --cpu-prof writes its profile.
  void gateway.close().finally(() => process.exit(0));
});
sendToParent({ type: 'ready', port: ports.smtpPort });
