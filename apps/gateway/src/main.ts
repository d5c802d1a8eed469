#!/usr/bin/env node
/**
 * The command line: `smtp-gateway start | dev | doctor | queue | --help`. It
 * picks the command and hands it process.env; serve.ts runs `start` and `dev`,
 * doctor/ runs `doctor`, queue-cli.ts runs `queue`. The exit code is the command's.
 */
import { configKeys } from './config/index.js';
import { devDefaults } from './dev.js';
import { runDoctor } from './doctor/index.js';
import { runQueueCli } from './queue-cli.js';
import { serve } from './serve.js';

const usage = `usage: smtp-gateway [start|dev|doctor|queue|--help]

  start   run from the environment (production)
  dev     development defaults: ports ${devDefaults.SMTP_PORT}/${devDefaults.SMTPS_PORT}, self-signed certificate in .dev/tls,
          readable logs, and an embedded fake Cakemail API unless CAKEMAIL_API_URL is set
  doctor  check a Cakemail login (and, with --smtp, a running gateway); doctor --help
  queue   list, retry, delete or bounce queued messages (QUEUE_MODE); queue --help

environment: ${configKeys.join(', ')}
`;

async function main(argv: string[]): Promise<number> {
  const command = argv[0] ?? 'start';
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(usage);
    return 0;
  }
  if (command === 'doctor') return runDoctor(argv.slice(1), { env: process.env, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
  if (command === 'queue') {
    const code = await runQueueCli(argv.slice(1), { env: process.env, stdout: process.stdout, stderr: process.stderr });
    // A Redis client that never connected keeps reconnecting: the command is done, so the process ends here
    // (stdout and stderr are synchronous for files and pipes on Linux, and for terminals).
    process.exit(code);
  }
  if (command !== 'start' && command !== 'dev') {
    process.stderr.write(`unknown command ${JSON.stringify(command)}\n${usage}`);
    return 2;
  }
  return serve(command, process.env);
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
