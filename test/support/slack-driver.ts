import { randomBytes } from 'node:crypto';
import { blockKitProblems } from './block-kit.ts';
import { signSlackRequest } from './signer.ts';
import { escapeCommandText, shouldEscape } from './slack-escape.ts';
import type { SlackObject, SlackStandin } from './slack-standin.ts';
import {
  type ButtonMatch,
  type ElementMatch,
  elementState,
  type FieldValue,
  fillView,
  findButton,
  findElement,
} from './views.ts';

/**
 * The app's HTTP answer to one request: status, body text, and the body parsed if it is JSON (else undefined).
 * `json` is `any` so a test can read what it expects of the app's answer without narrowing first.
 */
export type RawResult = { status: number; body: string; json?: any };

export type SlackResult = RawResult & {
  /** Sends the identical body again, freshly signed, with `x-slack-retry-num` one higher: Slack's retry. */
  resend(): Promise<SlackResult>;
};

export type SendOptions = {
  /** Sign with a timestamp six minutes old (Bolt refuses over five). */
  staleTimestamp?: boolean;
  /** Sign with the wrong secret. */
  badSignature?: boolean;
  /** Mark the request as Slack's Nth retry (`x-slack-retry-num`, `x-slack-retry-reason`). */
  retryNum?: number;
  retryReason?: string;
  headers?: Record<string, string>;
};

/** Who does it, and where (a channel id; commands default to C0GENERAL). */
export type As = { user: string; channel?: string } & SendOptions;

export type DriverOptions = {
  /** The app's base URL, e.g. http://127.0.0.1:PORT; requests go to `${appUrl}/slack/events`. */
  appUrl: string;
  signingSecret: string;
  standin: SlackStandin;
  teamId?: string;
  teamDomain?: string;
  /**
   * Where response_urls point, when the app reaches Slack through something in front of the stand-in
   * (SLACK_API_URL on another port): Roster posts only to a response_url on its Slack API's origin.
   */
  responseOrigin?: string;
};

const APP_ID = 'AROSTER';
const VERIFICATION_TOKEN = 'deprecated-verification-token';
const FORM = 'application/x-www-form-urlencoded';
/** Slack waits this long for an ack before it tells the person something went wrong (or retries an event). */
const ACK_WITHIN_MS = 3000;

const newId = (prefix: string) => `${prefix}${randomBytes(5).toString('hex').toUpperCase()}`;
const actionTs = () => (Date.now() / 1000).toFixed(6);
const channelName = (channel: string) => (channel.startsWith('D') ? 'directmessage' : 'general');

/** A short name for a request body: the command, the interaction's type and callback, or the event type. */
function requestName(rawBody: string, contentType: string): string {
  if (contentType === FORM) {
    const form = new URLSearchParams(rawBody);
    const command = form.get('command');
    if (command) return `the command ${command}`;
    const payload = parseJson(form.get('payload') ?? '');
    const callback = payload?.view?.callback_id ?? payload?.callback_id ?? payload?.actions?.[0]?.action_id;
    return `a ${payload?.type ?? 'request'}${callback ? ` (${callback})` : ''}`;
  }
  const body = parseJson(rawBody);
  return body?.event?.type ? `the event ${body.event.type}` : `a ${body?.type ?? 'request'}`;
}

/**
 * What Slack finds wrong with a submission's `errors` answer: each key must be the block_id of an input block
 * of the submitted view, and each message a non-empty string. Slack shows the person a general error instead.
 */
function fieldErrorProblems(rawBody: string, errors: unknown): string[] {
  const payload = parseJson(new URLSearchParams(rawBody).get('payload') ?? '');
  const blocks = (payload?.view?.blocks ?? []) as SlackObject[];
  // A view without blocks was made up by a test (a forged submission): no form shows its answer.
  if (!blocks.length) return [];
  const inputs = new Set(blocks.filter((b) => b.type === 'input').map((b) => b.block_id));
  if (!errors || typeof errors !== 'object' || !Object.keys(errors).length)
    return ['response_action errors without any error'];
  return Object.entries(errors).flatMap(([blockId, message]) => [
    ...(inputs.has(blockId) ? [] : [`errors.${blockId} names no input block of the view`]),
    ...(typeof message === 'string' && message.length ? [] : [`errors.${blockId} is not a message`]),
  ]);
}

function parseJson(text: string): SlackObject | undefined {
  try {
    const value: unknown = text ? JSON.parse(text) : undefined;
    return value && typeof value === 'object' ? (value as SlackObject) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Sends what Slack sends to the app, signed as Slack signs it, over real HTTP: slash commands,
 * interactivity payloads and events; and does what a person does: submit a modal, click a button,
 * pick an option. Trigger ids it puts in requests are issued by the stand-in, which accepts each once.
 */
export class SlackDriver {
  readonly triggerIds: string[] = [];
  /** Requests the app did not acknowledge within 3 s, as Slack counts: each also failed its send. */
  readonly unacked: { what: string; tookMs: number }[] = [];
  private readonly appUrl: string;
  private readonly signingSecret: string;
  private readonly standin: SlackStandin;
  private readonly teamId: string;
  private readonly teamDomain: string;
  private readonly responseOrigin: string | undefined;

  constructor(opts: DriverOptions) {
    this.responseOrigin = opts.responseOrigin;
    this.appUrl = opts.appUrl.replace(/\/$/, '');
    this.signingSecret = opts.signingSecret;
    this.standin = opts.standin;
    this.teamId = opts.teamId ?? 'T0001';
    this.teamDomain = opts.teamDomain ?? 'acme';
  }

  /** A fresh response_url on the stand-in, or on `responseOrigin` when one is given. */
  private responseUrl(): string {
    const url = new URL(this.standin.responseUrl());
    return this.responseOrigin ? `${this.responseOrigin}${url.pathname}` : url.href;
  }

  /** Posts `rawBody` to /slack/events with the given headers only: no signature unless you add one. */
  async raw(rawBody: string, contentType: string, headers: Record<string, string> = {}): Promise<RawResult> {
    const res = await fetch(`${this.appUrl}/slack/events`, {
      method: 'POST',
      headers: { 'content-type': contentType, ...headers },
      body: rawBody,
    });
    const body = await res.text();
    return { status: res.status, body, json: parseJson(body) };
  }

  /** Posts `rawBody` signed as Slack signs it (or badly, or stale, if asked). */
  async sendSigned(rawBody: string, contentType: string, opts: SendOptions = {}): Promise<SlackResult> {
    const ts = Math.floor(Date.now() / 1000) - (opts.staleTimestamp ? 6 * 60 : 0);
    const secret = opts.badSignature ? `not-${this.signingSecret}` : this.signingSecret;
    const headers: Record<string, string> = { ...signSlackRequest(secret, rawBody, ts) };
    if (opts.retryNum) {
      headers['x-slack-retry-num'] = String(opts.retryNum);
      headers['x-slack-retry-reason'] = opts.retryReason ?? 'http_timeout';
    }
    const sentAt = Date.now();
    const result = await this.raw(rawBody, contentType, { ...headers, ...opts.headers });
    const tookMs = Date.now() - sentAt;
    // Bolt answers 404 with no body for a request not acknowledged in time; Slack would have shown the
    // person an error by then (or retried the event), whatever the app did afterwards.
    if (result.status === 404 && !result.body && tookMs >= ACK_WITHIN_MS) {
      const what = requestName(rawBody, contentType);
      this.unacked.push({ what, tookMs });
      throw new Error(
        `Roster did not acknowledge ${what} within 3 s (no ack after ${tookMs} ms): Slack would have shown the person an error`,
      );
    }
    this.checkAck(rawBody, contentType, result);
    return {
      ...result,
      resend: () => this.sendSigned(rawBody, contentType, { ...opts, retryNum: (opts.retryNum ?? 0) + 1 }),
    };
  }

  /**
   * A message or view in the app's HTTP answer is held to Slack's Block Kit limits like any posted one: a
   * command's immediate reply, and the view a modal's submission answers with (update or push). Slack
   * refuses one over them, and the person sees an error instead.
   */
  private checkAck(rawBody: string, contentType: string, result: RawResult): void {
    const answer = result.json;
    if (result.status !== 200 || !answer || typeof answer !== 'object') return;
    const isCommand = contentType === FORM && new URLSearchParams(rawBody).has('command');
    const action = answer.response_action;
    const [surface, target] =
      isCommand && (answer.text || answer.blocks)
        ? (['message', answer] as const)
        : (action === 'update' || action === 'push') && answer.view
          ? (['modal', answer.view as SlackObject] as const)
          : [];
    const problems = surface && target ? blockKitProblems(surface, target) : [];
    if (action === 'errors') problems.push(...fieldErrorProblems(rawBody, answer.errors));
    if (problems.length)
      this.standin.refusedBlocks.push({ method: `ack (${requestName(rawBody, contentType)})`, problems });
  }

  /**
   * A slash command, form-encoded as Slack sends it, with a fresh response_url and trigger_id. `text` is
   * what the person typed: it goes out escaped or not as manifest.yml's should_escape says for the command
   * (see commandText). `verbatim` sends it exactly as given, as Slack does with a name a person typed in
   * full without picking it from Slack's list.
   */
  command(
    command: string,
    text: string,
    as: As & { triggerId?: string; verbatim?: boolean },
  ): Promise<SlackResult> {
    const channel = as.channel ?? 'C0GENERAL';
    const form = new URLSearchParams({
      token: VERIFICATION_TOKEN,
      team_id: this.teamId,
      team_domain: this.teamDomain,
      channel_id: channel,
      channel_name: channelName(channel),
      user_id: as.user,
      user_name: this.user(as.user).name,
      command,
      text: as.verbatim ? text : this.commandText(command, text),
      api_app_id: APP_ID,
      is_enterprise_install: 'false',
      response_url: this.responseUrl(),
      trigger_id: this.trigger(as.triggerId),
    });
    return this.sendSigned(form.toString(), FORM, as);
  }

  /**
   * The text Slack sends for `typed` after `command`: escaped (mentions, channels, addresses and links as
   * Slack's markup, `&<>` as entities) when manifest.yml sets should_escape for it, else as typed. A command
   * manifest.yml does not declare is sent as typed, Slack's default.
   */
  commandText(command: string, typed: string): string {
    if (!shouldEscape(command)) return typed;
    return escapeCommandText(typed, {
      members: [...this.standin.members.values(), this.standin.bot],
      channels: this.standin.channels.entries(),
    });
  }

  /** Any interactivity payload: one form field, `payload`, holding JSON. */
  interaction(payload: SlackObject, opts: SendOptions = {}): Promise<SlackResult> {
    return this.sendSigned(new URLSearchParams({ payload: JSON.stringify(payload) }).toString(), FORM, opts);
  }

  /** A block_actions payload: from a message (`message`, `channel`) or a view (`view`). */
  blockAction(
    opts: {
      user: string;
      actions: SlackObject[];
      message?: SlackObject;
      channel?: string;
      view?: SlackObject;
      container?: SlackObject;
      state?: SlackObject;
    } & SendOptions,
  ): Promise<SlackResult> {
    const { message, view } = opts;
    const channel: string | undefined = opts.channel ?? message?.channel;
    const isEphemeral = message?.method === 'chat.postEphemeral';
    const payload: SlackObject = {
      ...this.envelope('block_actions', opts.user),
      container:
        opts.container ??
        (view
          ? { type: 'view', view_id: view.id }
          : { type: 'message', message_ts: message?.ts, channel_id: channel, is_ephemeral: isEphemeral }),
      actions: opts.actions.map((a) => ({ action_ts: actionTs(), ...a })),
      state: opts.state ?? { values: view?.state?.values ?? {} },
    };
    if (view) payload.view = view;
    if (message) {
      payload.message = {
        type: 'message',
        user: 'UBOT',
        bot_id: 'BBOT',
        app_id: APP_ID,
        team: this.teamId,
        ts: message.ts,
        text: message.text,
        blocks: message.blocks,
        ...(message.thread_ts ? { thread_ts: message.thread_ts } : {}),
      };
    }
    if (channel) payload.channel = { id: channel, name: channelName(channel) };
    if (!view) payload.response_url = this.responseUrl();
    return this.interaction(payload, opts);
  }

  /** A view_submission of `view` as given: pass a view whose `state.values` are filled (see fillView). */
  viewSubmission(opts: { user: string; view: SlackObject } & SendOptions): Promise<SlackResult> {
    const payload = {
      ...this.envelope('view_submission', opts.user),
      view: { team_id: this.teamId, app_id: APP_ID, bot_id: 'BBOT', state: { values: {} }, ...opts.view },
      response_urls: [],
    };
    return this.interaction(payload, opts);
  }

  /** The person closed the modal (sent only for views with notify_on_close). */
  viewClosed(opts: { user: string; view: SlackObject } & SendOptions): Promise<SlackResult> {
    return this.interaction(
      { ...this.envelope('view_closed', opts.user), view: opts.view, is_cleared: false },
      opts,
    );
  }

  /** A global shortcut, from the shortcuts menu. */
  shortcut(opts: { user: string; callbackId: string } & SendOptions): Promise<SlackResult> {
    return this.interaction(
      { ...this.envelope('shortcut', opts.user), callback_id: opts.callbackId, action_ts: actionTs() },
      opts,
    );
  }

  /** A message shortcut, from a message's "More actions" menu. */
  messageShortcut(
    opts: {
      user: string;
      callbackId: string;
      message: { ts: string; user?: string; text: string; bot_id?: string; subtype?: string };
      channel?: string;
    } & SendOptions,
  ): Promise<SlackResult> {
    const channel = opts.channel ?? 'C0GENERAL';
    return this.interaction(
      {
        ...this.envelope('message_action', opts.user),
        callback_id: opts.callbackId,
        action_ts: actionTs(),
        message_ts: opts.message.ts,
        message: { type: 'message', ...opts.message },
        channel: { id: channel, name: channelName(channel) },
        response_url: this.responseUrl(),
      },
      opts,
    );
  }

  /**
   * An event in its event_callback envelope. A retry (`retryNum`) carries the retry headers; give it the
   * `eventId` of the delivery it repeats, as Slack does. `eventTime` (ms since the epoch, now by default) is
   * when it happened in Slack: an earlier one is an event Slack delivers late.
   */
  event(
    event: SlackObject,
    opts: { eventId?: string; eventTime?: number } & SendOptions = {},
  ): Promise<SlackResult> {
    const now = (opts.eventTime ?? Date.now()) / 1000;
    // Slack sends the Home tab it shows with app_home_opened, once one was published.
    if (event.type === 'app_home_opened' && event.tab === 'home' && !('view' in event)) {
      const shown = this.standin.homeView(String(event.user));
      if (shown) event = { ...event, view: shown };
    }
    const body = JSON.stringify({
      token: VERIFICATION_TOKEN,
      team_id: this.teamId,
      context_team_id: this.teamId,
      api_app_id: APP_ID,
      event: { event_ts: now.toFixed(6), ...event },
      type: 'event_callback',
      event_id: opts.eventId ?? newId('Ev'),
      event_time: Math.floor(now),
      authorizations: [{ team_id: this.teamId, user_id: 'UBOT', is_bot: true, is_enterprise_install: false }],
      is_ext_shared_channel: false,
    });
    return this.sendSigned(body, 'application/json', opts);
  }

  /** A file dropped in the bot's DM, as Slack reports it: a message event with subtype file_share. */
  fileShare(
    user: string,
    file: SlackObject,
    opts: { eventId?: string } & SendOptions = {},
  ): Promise<SlackResult> {
    return this.event(
      {
        type: 'message',
        subtype: 'file_share',
        channel: `D${user}`,
        channel_type: 'im',
        user,
        text: '',
        files: [file],
        ts: `${Date.now() / 1000}`,
      },
      opts,
    );
  }

  /** Slack's check of the Request URL when it is set in the app's settings. */
  urlVerification(challenge: string, opts: SendOptions = {}): Promise<SlackResult> {
    const body = JSON.stringify({ token: VERIFICATION_TOKEN, challenge, type: 'url_verification' });
    return this.sendSigned(body, 'application/json', opts);
  }

  /**
   * Slack's notice that it stopped delivering the workspace's events (over 30,000 in the hour): a signed
   * JSON body of its own, with no event envelope and no event id, naming the minute the limit began (epoch
   * seconds, a whole minute). Sent once to the Request URL, and not retried.
   */
  appRateLimited(minuteRateLimited: number, opts: SendOptions = {}): Promise<SlackResult> {
    const body = JSON.stringify({
      token: VERIFICATION_TOKEN,
      type: 'app_rate_limited',
      team_id: this.teamId,
      minute_rate_limited: minuteRateLimited,
      api_app_id: APP_ID,
    });
    return this.sendSigned(body, 'application/json', opts);
  }

  /** Fills the view's inputs (see fillView) and submits it, as the person would. */
  submitView(view: SlackObject, values: Record<string, FieldValue>, as: As): Promise<SlackResult> {
    return this.viewSubmission({ ...as, view: fillView(view, values) });
  }

  /**
   * Clicks a button in a message (a recorded message, or anything with `blocks`, `channel` and `ts`) or in a
   * view (anything of type modal or home, with `id`).
   */
  clickButton(target: SlackObject, match: ButtonMatch, as: As): Promise<SlackResult> {
    const { action, blockId } = findButton(target.blocks, match);
    const clicked = {
      type: 'button',
      action_id: action.action_id,
      block_id: blockId,
      text: action.text,
      ...(action.value !== undefined ? { value: action.value } : {}),
      ...(action.style ? { style: action.style } : {}),
    };
    return this.act(target, clicked, as);
  }

  /**
   * Picks an option (or a user, channel, date...) in a select menu, overflow menu, radio buttons or
   * checkboxes of a message or view, found by action id or block id; `value` as in fillView.
   */
  selectOption(target: SlackObject, match: ElementMatch, value: FieldValue, as: As): Promise<SlackResult> {
    const { element, blockId } = findElement(target.blocks, match);
    const where = `${element.type} ${blockId}/${element.action_id}`;
    const state = elementState(element, value, where);
    const action = {
      ...state,
      action_id: element.action_id,
      block_id: blockId,
      ...(element.placeholder ? { placeholder: element.placeholder } : {}),
    };
    return this.act(target, action, as, { [String(blockId)]: { [String(element.action_id)]: state } });
  }

  private act(
    target: SlackObject,
    action: SlackObject,
    as: As,
    changed: SlackObject = {},
  ): Promise<SlackResult> {
    const isView = target.type === 'modal' || target.type === 'home';
    if (isView) {
      const values = { ...(target.state?.values ?? {}), ...changed };
      return this.blockAction({
        ...as,
        actions: [action],
        view: { ...target, state: { values } },
      });
    }
    return this.blockAction({
      ...as,
      actions: [action],
      message: target,
      channel: as.channel ?? target.channel,
      state: { values: changed },
    });
  }

  private user(userId: string) {
    const m = this.standin.members.get(userId);
    const name = m?.name ?? userId.toLowerCase();
    // A member of another organisation, clicking in a channel shared through Slack Connect, comes with
    // their own team; the payload's `team` stays the workspace the app answers for.
    return { id: userId, username: name, name, team_id: m?.teamId ?? this.teamId };
  }

  private trigger(given?: string): string {
    const id = this.standin.issueTriggerId(given);
    this.triggerIds.push(id);
    return id;
  }

  private envelope(type: string, user: string): SlackObject {
    return {
      type,
      team: { id: this.teamId, domain: this.teamDomain },
      user: this.user(user),
      api_app_id: APP_ID,
      token: VERIFICATION_TOKEN,
      trigger_id: this.trigger(),
      is_enterprise_install: false,
      enterprise: null,
    };
  }
}
