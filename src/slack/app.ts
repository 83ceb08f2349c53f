import type { EntityManager } from '@mikro-orm/postgresql';
import { App, type CodedError, HTTPReceiver, SocketModeReceiver } from '@slack/bolt';
import type { ExtendedErrorHandlerArgs } from '@slack/bolt/dist/App.js';
import { WebClient } from '@slack/web-api';
import type { Config } from '../config.ts';
import { ensureAccount } from '../features/accounts/account.service.ts';
import { asDomainError } from '../shared/errors.ts';
import { referenceId } from '../shared/ids.ts';
import type { Logger } from '../shared/logger.ts';
import type { RosterContext } from './context.ts';
import { surfaceOf, teamIdOf, userIdOf } from './context.ts';
import { boltLogger } from './logger.ts';
import { tellPerson } from './notify.ts';

export type SlackAppOptions = {
  config: Config;
  logger: Logger;
  em: EntityManager;
  /** Wait for the handler before answering Slack's HTTP request; tests use it for determinism. */
  processBeforeResponse?: boolean;
};

function unwrap(error: CodedError): unknown {
  const e = error as CodedError & { original?: unknown; originals?: unknown[] };
  return e.original ?? e.originals?.[0] ?? e;
}

/** The Bolt app: HTTP receiver at /slack/events (or Socket Mode), request middleware and one error handler. */
export function createSlackApp(opts: SlackAppOptions): { app: App; receiver?: HTTPReceiver } {
  const { config, logger } = opts;
  const log = boltLogger(logger);
  const socketMode = Boolean(config.slack.appToken);
  const receiver = socketMode
    ? undefined
    : new HTTPReceiver({
        signingSecret: config.slack.signingSecret,
        endpoints: '/slack/events',
        processBeforeResponse: opts.processBeforeResponse ?? false,
        logger: log,
      });
  const socketReceiver = socketMode ? socketModeReceiver(config, log) : undefined;
  const app = new App({
    token: config.slack.botToken,
    signingSecret: config.slack.signingSecret,
    receiver: receiver ?? socketReceiver,
    logger: log,
    clientOptions: { slackApiUrl: config.slack.apiUrl, logger: log },
    deferInitialization: true,
    extendedErrorHandler: true,
  });

  app.use(async ({ body, context, next }) => {
    const payload = body as Record<string, any>;
    const teamId = context.teamId ?? teamIdOf(payload);
    const userId = context.userId ?? userIdOf(payload);
    const surface = surfaceOf(payload);
    const em = opts.em.fork();
    const requestLog = logger.child({ team: teamId, user: userId, surface });
    if (!teamId) {
      requestLog.warn('request without a team id ignored');
      return;
    }
    const account = await ensureAccount(em, teamId);
    const rc: RosterContext = { em, log: requestLog, account, teamId, userId, surface };
    context.roster = rc;
    await next();
  });

  app.error((async ({ error, body, context }: ExtendedErrorHandlerArgs) => {
    const original = unwrap(error);
    const rc = context.roster as RosterContext | undefined;
    const requestLog = rc?.log ?? logger;
    const payload = (body ?? {}) as Record<string, any>;
    const domain = asDomainError(original);
    if (domain) {
      requestLog.info({ code: domain.code }, domain.message);
      await tellPerson(app.client, payload, domain.message).catch((err) =>
        requestLog.warn({ err }, 'could not tell the person about an error'),
      );
      return;
    }
    const ref = referenceId();
    requestLog.error({ err: original, ref }, 'Slack request failed');
    await tellPerson(
      app.client,
      payload,
      `:warning: Something went wrong on our side. Please try again; if it keeps happening, give your admin this reference: \`${ref}\`.`,
    ).catch((err) => requestLog.warn({ err }, 'could not tell the person about an error'));
  }) as Parameters<typeof app.error>[0]);

  return { app, receiver };
}

/**
 * Socket Mode's receiver opens its connection with apps.connections.open through a Web API client of its
 * own, which Bolt builds on slack.com whatever the app's options say; it gets SLACK_API_URL like every
 * other call.
 */
function socketModeReceiver(config: Config, log: ReturnType<typeof boltLogger>): SocketModeReceiver {
  const appToken = config.slack.appToken ?? '';
  const receiver = new SocketModeReceiver({ appToken, logger: log });
  (receiver.client as unknown as { webClient: WebClient }).webClient = new WebClient(undefined, {
    slackApiUrl: config.slack.apiUrl,
    logger: log,
    headers: { Authorization: `Bearer ${appToken}` },
    retryConfig: { retries: 10, factor: 1.3 },
  });
  return receiver;
}
