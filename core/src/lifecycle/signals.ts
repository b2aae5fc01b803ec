import type { Logger } from 'pino';

/**
 * Turns SIGTERM and SIGINT into an AbortSignal for `Manager.run`: the first signal starts the graceful stop; a
 * second one exits at once with status 130 (an impatient operator pressing Ctrl-C twice).
 * Returns the signal and a function that removes the handlers.
 */
export function shutdownOnSignals(logger: Logger, signals: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT']): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const handler = (name: NodeJS.Signals): void => {
    if (controller.signal.aborted) {
      logger.warn({ signal: name }, 'second stop signal; exiting now');
      process.exit(130);
    }
    logger.info({ signal: name }, 'stop signal received; shutting down gracefully');
    controller.abort(new Error(`received ${name}`));
  };
  for (const s of signals) process.on(s, handler);
  return {
    signal: controller.signal,
    dispose: () => {
      for (const s of signals) process.off(s, handler);
    },
  };
}
