/**
 * loadConfig(env): the environment validated (environment.ts), then cut into
 * typed sections (sections.ts). The commands (serve.ts, doctor/) pass it process.env.
 */
import { parseEnvironment, type Variable } from './environment.js';
import { toSections, type Config } from './sections.js';

export { ConfigError, configKeys, defaultOf, parseEnvironment } from './environment.js';
export type { Environment, Variable } from './environment.js';
export type { Config } from './sections.js';

/** Throws a ConfigError naming every bad variable. `overrides` are a mode's defaults: a variable set in `env` wins. */
export function loadConfig(env: NodeJS.ProcessEnv, overrides: Partial<Record<Variable, string>> = {}): Config {
  return toSections(parseEnvironment(env, overrides));
}
