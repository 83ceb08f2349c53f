import type { Logger } from './logger.ts';

/**
 * Logs promises rejected with nobody listening (a forgotten `await`, a fire-and-forget call that
 * failed) with their error and stack, through the app's logger, instead of Node's bare stderr dump that
 * ends the process. Returns a function that removes the handler. Call it once where the process starts.
 */
export function logUnhandledRejections(logger: Logger): () => void {
  const onRejection = (reason: unknown) => {
    const err = reason instanceof Error ? reason : new Error(`non-error rejection: ${String(reason)}`);
    logger.error({ err }, 'unhandled promise rejection');
  };
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('unhandledRejection', onRejection);
  };
}
