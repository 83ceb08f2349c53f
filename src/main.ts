import { SlackAuthError, startRoster } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { createLogger } from './shared/logger.ts';

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(78);
  }
  throw err;
}

const logger = createLogger(config.logLevel);
try {
  const roster = await startRoster({ config, logger });
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    await roster.stop();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
} catch (err) {
  if (err instanceof SlackAuthError) {
    logger.fatal(err.message);
  } else {
    logger.fatal({ err }, 'Roster could not start');
  }
  process.exit(1);
}
