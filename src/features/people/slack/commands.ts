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

/** What was typed after `/people`: a mention (`<@U123|ana>`), an email (plain or `<mailto:…|…>`), or help. */
export function parsePeopleText(text: string): { slackUserId: string } | { email: string } | { help: true } {
  const t = text.trim();
  const mention = /^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$/.exec(t);
  if (mention) return { slackUserId: mention[1]! };
  const email = unescapeSlack(t);
  if (/^[^\s@<>]+@[^\s@<>]+$/.test(email) && email.length <= 254) return { email };
  return { help: true };
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
    const actor = await slackActor(deps, context, command.user_id);
    let user = await people.find(em, account, parsed);
    if ('slackUserId' in parsed) {
      const person = await deps.admins.member(em, account, parsed.slackUserId).catch(() => null);
      if (person && !isOfWorkspace(person, account.teamId)) {
        // Their address is their own organisation's to say: it would show whoever here has it, maybe someone else.
        await respond({
          response_type: 'ephemeral',
          text: `<@${parsed.slackUserId}> is here through Slack Connect, from another organisation: not a member of this workspace, so Roster does not know them by their Slack account. To find someone in Roster by their address, type \`/people EMAIL\`.`,
        });
        return;
      }
      if (!user && person?.email) user = await people.find(em, account, { email: person.email });
    }
    if (!user) {
      const who = 'email' in parsed ? esc(parsed.email) : `<@${parsed.slackUserId}>`;
      await respond({
        response_type: 'ephemeral',
        text: `${who} is not a user in Roster. Invite them with \`/invite${'email' in parsed ? ` ${esc(parsed.email)}` : ''}\`, or look for contacts with \`/contact find\`.`,
      });
      return;
    }
    const card = await people.card(em, account, user.id);
    await respond({ response_type: 'ephemeral', ...personCard(card, actor) });
  });
}
