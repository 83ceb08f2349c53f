import { randomBytes } from 'node:crypto';
import { signSlackRequest } from './signer.ts';
import type { SlackStandin } from './slack-standin.ts';
import { type ButtonMatch, type FieldValue, fillView, findButton } from './views.ts';

export type SlackResult = {
  status: number;
  body: string;
  json?: any;
  /** Sends the identical request again, as Slack does when it retries. */
  resend(): Promise<SlackResult>;
};

type SendOptions = { staleTimestamp?: boolean; badSignature?: boolean; headers?: Record<string, string> };
type As = { user: string; channel?: string } & SendOptions;

const id = (prefix: string) => `${prefix}${randomBytes(5).toString('hex').toUpperCase()}`;

/**
 * Sends what Slack sends to the app, signed as Slack signs it, over real HTTP: slash commands,
 * interactivity payloads and events; and does what a person does: submit a modal, click a button.
 */
export class SlackDriver {
  private readonly appUrl: string;
  private readonly signingSecret: string;
  private readonly standin: SlackStandin;
  private readonly teamId: string;
  private readonly teamDomain: string;
  readonly triggerIds: string[] = [];

  constructor(opts: {
    appUrl: string;
    signingSecret: string;
    standin: SlackStandin;
    teamId?: string;
    teamDomain?: string;
  }) {
    this.appUrl = opts.appUrl;
    this.signingSecret = opts.signingSecret;
    this.standin = opts.standin;
    this.teamId = opts.teamId ?? 'T0001';
    this.teamDomain = opts.teamDomain ?? 'acme';
  }

  async sendSigned(
    rawBody: string,
    contentType: string,
    opts: SendOptions & { retryNum?: number } = {},
  ): Promise<SlackResult> {
    const ts = Math.floor(Date.now() / 1000) - (opts.staleTimestamp ? 6 * 60 : 0);
    const headers: Record<string, string> = {
      'content-type': contentType,
      ...signSlackRequest(opts.badSignature ? 'not-the-secret' : this.signingSecret, rawBody, ts),
      ...opts.headers,
    };
    if (opts.retryNum) {
      headers['x-slack-retry-num'] = String(opts.retryNum);
      headers['x-slack-retry-reason'] = 'http_timeout';
    }
    const res = await fetch(`${this.appUrl}/slack/events`, { method: 'POST', headers, body: rawBody });
    const body = await res.text();
    let json: any;
    try {
      json = body ? JSON.parse(body) : undefined;
    } catch {
      json = undefined;
    }
    return {
      status: res.status,
      body,
      json,
      resend: () => this.sendSigned(rawBody, contentType, { ...opts, retryNum: (opts.retryNum ?? 0) + 1 }),
    };
  }

  private user(userId: string) {
    const m = this.standin.members.get(userId);
    return {
      id: userId,
      username: m?.name ?? userId.toLowerCase(),
      name: m?.name ?? userId.toLowerCase(),
      team_id: this.teamId,
    };
  }

  private trigger(): string {
    const t = `${Date.now()}.${randomBytes(4).readUInt32BE()}.${randomBytes(8).toString('hex')}`;
    this.triggerIds.push(t);
    return t;
  }

  /** A slash command, form-encoded as Slack sends it. */
  command(command: string, text: string, as: As & { triggerId?: string }): Promise<SlackResult> {
    const channel = as.channel ?? 'C0GENERAL';
    const form = new URLSearchParams({
      token: 'deprecated-verification-token',
      team_id: this.teamId,
      team_domain: this.teamDomain,
      channel_id: channel,
      channel_name: channel.startsWith('D') ? 'directmessage' : 'general',
      user_id: as.user,
      user_name: this.user(as.user).name,
      command,
      text,
      api_app_id: 'AROSTER',
      is_enterprise_install: 'false',
      response_url: this.standin.responseUrl(),
      trigger_id: as.triggerId ?? this.trigger(),
    });
    return this.sendSigned(form.toString(), 'application/x-www-form-urlencoded', as);
  }

  /** Any interactivity payload: one form field, `payload`, holding JSON. */
  interaction(payload: Record<string, unknown>, opts: SendOptions = {}): Promise<SlackResult> {
    const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
    return this.sendSigned(body, 'application/x-www-form-urlencoded', opts);
  }

  private envelope(type: string, user: string) {
    return {
      type,
      team: { id: this.teamId, domain: this.teamDomain },
      user: this.user(user),
      api_app_id: 'AROSTER',
      token: 'deprecated-verification-token',
      trigger_id: this.trigger(),
      is_enterprise_install: false,
      enterprise: null,
    };
  }

  blockAction(
    opts: {
      user: string;
      actions: Record<string, unknown>[];
      message?: Record<string, any>;
      channel?: string;
      view?: Record<string, any>;
      container?: Record<string, unknown>;
    } & SendOptions,
  ): Promise<SlackResult> {
    const channel = opts.channel ?? opts.message?.channel;
    const payload: Record<string, unknown> = {
      ...this.envelope('block_actions', opts.user),
      container:
        opts.container ??
        (opts.view
          ? { type: 'view', view_id: opts.view.id }
          : { type: 'message', message_ts: opts.message?.ts, channel_id: channel, is_ephemeral: false }),
      actions: opts.actions.map((a) => ({ action_ts: `${Date.now() / 1000}`, ...a })),
      state: { values: opts.view?.state?.values ?? {} },
    };
    if (opts.view) payload.view = opts.view;
    if (opts.message) {
      payload.message = {
        type: 'message',
        ts: opts.message.ts,
        text: opts.message.text,
        blocks: opts.message.blocks,
      };
      payload.channel = { id: channel, name: 'general' };
      payload.response_url = this.standin.responseUrl();
    }
    return this.interaction(payload, opts);
  }

  viewSubmission(opts: { user: string; view: Record<string, any> } & SendOptions): Promise<SlackResult> {
    const payload = {
      ...this.envelope('view_submission', opts.user),
      view: { team_id: this.teamId, app_id: 'AROSTER', bot_id: 'BBOT', ...opts.view },
      response_urls: [],
    };
    return this.interaction(payload, opts);
  }

  viewClosed(opts: { user: string; view: Record<string, any> }): Promise<SlackResult> {
    return this.interaction({
      ...this.envelope('view_closed', opts.user),
      view: opts.view,
      is_cleared: false,
    });
  }

  shortcut(opts: { user: string; callbackId: string } & SendOptions): Promise<SlackResult> {
    return this.interaction(
      {
        ...this.envelope('shortcut', opts.user),
        callback_id: opts.callbackId,
        action_ts: `${Date.now() / 1000}`,
      },
      opts,
    );
  }

  messageShortcut(
    opts: {
      user: string;
      callbackId: string;
      message: { ts: string; user: string; text: string };
      channel?: string;
    } & SendOptions,
  ): Promise<SlackResult> {
    const channel = opts.channel ?? 'C0GENERAL';
    return this.interaction(
      {
        ...this.envelope('message_action', opts.user),
        callback_id: opts.callbackId,
        action_ts: `${Date.now() / 1000}`,
        message_ts: opts.message.ts,
        message: { type: 'message', ...opts.message },
        channel: { id: channel, name: 'general' },
        response_url: this.standin.responseUrl(),
      },
      opts,
    );
  }

  /** An event, in its event_callback envelope. A retry sends the same event_id with retry headers. */
  event(event: Record<string, unknown>, opts: { eventId?: string } & SendOptions = {}): Promise<SlackResult> {
    const body = JSON.stringify({
      token: 'deprecated-verification-token',
      team_id: this.teamId,
      api_app_id: 'AROSTER',
      event: { event_ts: `${Date.now() / 1000}`, ...event },
      type: 'event_callback',
      event_id: opts.eventId ?? id('Ev'),
      event_time: Math.floor(Date.now() / 1000),
      authorizations: [{ team_id: this.teamId, user_id: 'UBOT', is_bot: true, is_enterprise_install: false }],
      is_ext_shared_channel: false,
    });
    return this.sendSigned(body, 'application/json', opts);
  }

  /** Fills the view's inputs and submits it, as the person would. */
  submitView(view: Record<string, any>, values: Record<string, FieldValue>, as: As): Promise<SlackResult> {
    return this.viewSubmission({ ...as, view: fillView(view, values) });
  }

  /** Clicks a button in a message the app posted (or a view it opened). */
  clickButton(target: Record<string, any>, match: ButtonMatch, as: As): Promise<SlackResult> {
    const { action, blockId } = findButton(target.blocks ?? [], match);
    const clicked = {
      type: 'button',
      action_id: action.action_id,
      block_id: blockId,
      value: action.value,
      text: action.text,
      style: action.style,
    };
    const isView = typeof target.type === 'string' && ['modal', 'home'].includes(target.type);
    return this.blockAction({
      ...as,
      actions: [clicked],
      ...(isView ? { view: target } : { message: target, channel: target.channel }),
    });
  }
}
