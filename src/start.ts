import { type Roster, StartupError, startRoster } from './app.ts';
import { ConfigError, loadConfig, loadEnvFile } from './config.ts';
import { createLogger } from './shared/logger.ts';
import { logUnhandledRejections } from './shared/process-errors.ts';

/**
 * Roster as `npm start` runs it (through main.ts, which loads this module): reads the settings, starts
 * everything, and stops on a signal.
 */
export async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    // A .env file in the working directory is read when present; variables already set win over it.
    loadEnvFile();
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(78);
    }
    throw err;
  }

  const logger = createLogger(config.logLevel);
  logUnhandledRejections(logger);
  /**
   * Roster exits within this long of a stop signal, whatever is still running: the drain, the grace (shared by
   * Slack requests still being worked and running jobs) and 4 s more.
   */
  const STOP_DEADLINE_MS = ((config.stopDrainSeconds ?? 0) + (config.stopGraceSeconds ?? 5) + 4) * 1000;
  let roster: Roster | undefined;
  let stopping = false;
  /** Aborted by a stop that comes while starting: startRoster() stops what it started and gives up. */
  const starting = new AbortController();

  /** Migrations being waited for or applied: a stop waits for them, however long, as the log says. */
  let migrating = false;
  let deadlineArmed = false;
  // A stop that hangs (a job that ignores the deadline, a stuck connection) must not keep the process alive.
  const armDeadline = () => {
    if (deadlineArmed) return;
    deadlineArmed = true;
    setTimeout(() => {
      logger.error(`Roster did not stop within ${STOP_DEADLINE_MS / 1000} s; exiting anyway`);
      process.exit(1);
    }, STOP_DEADLINE_MS).unref();
  };

  async function shutdown(reason: string): Promise<void> {
    if (stopping) return;
    stopping = true;
    logger.info({ reason }, 'stopping');
    if (!migrating) armDeadline();
    // While starting, startRoster() stops what it started and gives up (or, past its last step, returns and
    // is stopped below).
    if (!roster) {
      starting.abort();
      return;
    }
    await roster.stop();
    logger.info('stopped');
    process.exit(0);
  }

  // Ctrl-C signals the whole process group, and npm forwards the same signal: the second one is ignored.
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGHUP', () => void shutdown('SIGHUP'));

  // Started by a parent that has gone away (npm killed on its own): stop rather than run on unattended.
  const parent = process.ppid;
  if (parent > 1) {
    setInterval(() => {
      if (process.ppid !== parent) void shutdown('the process that started Roster has exited');
    }, 1000).unref();
  }

  try {
    roster = await startRoster({
      config,
      logger,
      signal: starting.signal,
      onMigrations: (busy) => {
        migrating = busy;
        // Done with a stop waiting: what is left of the start stops within the deadline.
        if (!busy && stopping) armDeadline();
      },
    });
    if (stopping) {
      stopping = false;
      await shutdown('stop requested while starting');
    }
  } catch (err) {
    if (stopping) {
      // The stop interrupted the start (the embedded database's first setup gets Ctrl-C too): not a failure.
      logger.debug({ err }, 'start interrupted');
      logger.info('stopped before Roster had started');
      process.exit(0);
    } else if (err instanceof StartupError) {
      // Said even with LOG_LEVEL=silent: an exit code alone does not tell the operator what to fix.
      if (logger.isLevelEnabled('fatal')) logger.fatal(err.message);
      else console.error(err.message);
    } else {
      logger.fatal({ err }, 'Roster could not start');
    }
    process.exit(1);
  }
}
