import type { App } from '@slack/bolt';
import { slackActor } from '../../../slack/actor.ts';
import { esc } from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import { isOfWorkspace } from '../../directory/directory.service.ts';
import type { Deps } from '../../feature.ts';
import type { PersonService } from '../person.service.ts';
import { personCard } from './blocks.ts';

const HELP = [
  '*`/people ana@example.com`* or *`/people @ana`* shows the person card: status, role, seat, details and history.',
  'Admins change people from the card: unlock, deactivate, reactivate, change role or permission set, edit details, change the login email.',
  'Anyone else sees the card and can ask an admin for a change that takes a paid seat.',
].join('\n');

const ONE_PERSON = '`/people` shows one person: type `/people @name` or `/people name@example.com`.';

/**
 * What was typed after `/people`: a mention (`<@U123|ana>`), an email (plain, `<mailto:…|…>`, or between
 * angle brackets as copied from an email), help, or something Slack marked up that is not one person (a
 * user group, a channel, `@here`, several mentions), answered with why.
 */
export function parsePeopleText(
  text: string,
): { slackUserId: string } | { email: string } | { help: true } | { notPerson: string } {
  const t = text.trim();
  const mention = /^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$/.exec(t);
  if (mention) return { slackUserId: mention[1]! };
  const notPerson = notOnePerson(t);
  if (notPerson) return { notPerson };
  const email = unescapeSlack(t)
    .trim()
    .replace(/^<([^<>]*)>$/, '$1')
    .trim();
  if (/^[^\s@<>]+@[^\s@<>]+$/.test(email) && email.length <= 254) return { email };
  return { help: true };
}

/** Why Slack's markup in `text` names no single person, or null when it does not say (see parsePeopleText). */
function notOnePerson(text: string): string | null {
  const mentions = [...text.matchAll(/<@([UW][A-Z0-9]+)(?:\|[^>]*)?>/g)];
  if (mentions.length > 1) {
    return `You mentioned ${mentions.length} people: \`/people\` shows one at a time, as in \`/people <@${mentions[0]![1]}>\`.`;
  }
  const group = /^<!subteam\^[A-Z0-9]+(?:\|([^<>]*))?>$/.exec(text);
  if (group) {
    const name = group[1] ? `\`${esc(unescapeSlack(group[1]).slice(0, 100))}\`` : 'That';
    return `${name} is a user group, not a person. ${ONE_PERSON}`;
  }
  const channel = /^<#[CG][A-Z0-9]+(?:\|([^<>]*))?>$/.exec(text);
  if (channel) {
    const name = channel[1] ? `\`#${esc(unescapeSlack(channel[1]).slice(0, 100))}\`` : 'That';
    return `${name} is a channel, not a person. ${ONE_PERSON}`;
  }
  const special = /^<!(here|channel|everyone)(?:\|[^<>]*)?>$/.exec(text);
  if (special) return `\`@${special[1]}\` is not a person. ${ONE_PERSON}`;
  return null;
}

/**
 * The text as the person typed it: an address Slack made a link of (`<mailto:a@b.c|a@b.c>`, for all or part of
 * what was typed, as for `r&d@acme.test`) is the address again, and the `&`, `<` and `>` Slack sends as
 * `&amp;`, `&lt;` and `&gt;` are those characters.
 */
function unescapeSlack(text: string): string {
  return text
    .replace(/<mailto:([^|<>]*)(?:\|([^<>]*))?>/gi, (_m, href: string, label?: string) => label || href)
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** `/people EMAIL|@someone`: the person card, with the actions the viewer may take. */
export function registerPeopleCommand(app: App, deps: Deps, people: PersonService): void {
  app.command('/people', async ({ ack, command, context, respond }) => {
    await ack();
    const parsed = parsePeopleText(command.text);
    if ('notPerson' in parsed) {
      await respond({ response_type: 'ephemeral', text: parsed.notPerson });
      return;
    }
    if ('help' in parsed) {
      const typed = unescapeSlack(command.text.trim());
      // `@name` sent as text: Slack did not make a mention of it, as for someone who left Slack, or a name
      // typed without picking it from the list. The search takes the name without its `@`.
      const name = typed.replace(/^@/, '').slice(0, 100);
      const why = typed.startsWith('@')
        ? `Slack did not send \`${esc(typed.slice(0, 100))}\` as a mention: pick the person from the list as you type, or type their email (someone who left Slack can only be found by email).`
        : `I could not read \`${esc(typed.slice(0, 100))}\` as an email or a mention.`;
      await respond({
        response_type: 'ephemeral',
        text: `${typed && !/^help$/i.test(typed) ? `${why} To find someone by name, type \`/contact find ${esc(name)}\`.\n` : ''}${HELP}`,
      });
      return;
    }
    const { em, account } = roster(context);
    const actor = await slackActor(deps, context, command.user_id, { membersOnly: true });
    let user = await people.find(em, account, parsed);
    let slackEmail: string | null = null;
    if ('slackUserId' in parsed) {
      let lookupFailed = false;
      const person = await deps.admins.member(em, account, parsed.slackUserId).catch((err) => {
        roster(context).log.warn({ err }, 'could not ask Slack who was mentioned');
        lookupFailed = true;
        return null;
      });
      if (!user && lookupFailed) {
        // Without their address Roster cannot tell whether they are in Roster: saying they are not would be a guess.
        await respond({
          response_type: 'ephemeral',
          text: `Slack could not say who <@${parsed.slackUserId}> is just now, so Roster cannot tell whether they are in Roster. Try again in a moment, or type their email: \`/people name@example.com\`.`,
        });
        return;
      }
      if (person && !isOfWorkspace(person, account.teamId)) {
        // Their address is their own organisation's to say: it would show whoever here has it, maybe someone else.
        await respond({
          response_type: 'ephemeral',
          text: `<@${parsed.slackUserId}> is here through Slack Connect, from another organisation: not a member of this workspace, so Roster does not know them by their Slack account. To find someone in Roster by their address, type \`/people EMAIL\`.`,
        });
        return;
      }
      if (!user && person?.isBot) {
        await respond({
          response_type: 'ephemeral',
          text: `<@${parsed.slackUserId}> is an app, not a person: Roster has no card for it. ${ONE_PERSON}`,
        });
        return;
      }
      if (!user && person?.email) user = await people.find(em, account, { email: person.email });
      if (!user && person?.deleted) {
        await respond({
          response_type: 'ephemeral',
          text: `<@${parsed.slackUserId}> has left this Slack workspace and is not a user in Roster. If Roster knows them by another address, type \`/people EMAIL\`.`,
        });
        return;
      }
      slackEmail = person?.email ?? null;
    }
    if (!user) {
      const who = 'email' in parsed ? esc(parsed.email) : `<@${parsed.slackUserId}>`;
      const address = 'email' in parsed ? parsed.email : slackEmail;
      await respond({
        response_type: 'ephemeral',
        text: `${who} is not a user in Roster. Invite them with \`/invite${address ? ` ${esc(address)}` : ''}\`, or look for contacts with \`/contact find\`.`,
      });
      return;
    }
    const card = await people.card(em, account, user.id);
    await respond({ response_type: 'ephemeral', ...personCard(card, actor) });
  });
}
