/** The part of a pino logger smtp-core uses, so any pino instance fits. */
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
