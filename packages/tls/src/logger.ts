/**
 * The logger every package of the gateway takes: the part of a pino logger
 * they use, so any pino instance fits. It lives here, in the lowest package,
 * so that each package can name it without depending on one above it.
 */
export interface Logger {
  child(bindings: Record<string, unknown>): Logger;
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A logger that drops everything, for tests and embedding. */
export const silentLogger: Logger = {
  child: () => silentLogger,
  debug() {},
  info() {},
  warn() {},
  error() {},
};
