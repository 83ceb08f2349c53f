import {
  actions,
  type Block,
  button,
  context,
  divider,
  esc,
  escFit,
  header,
  section,
  slackDate,
} from '../../../slack/blocks.ts';
import type { IAccount } from '../../accounts/account.entity.ts';
import { readableDomain } from '../../accounts/allowed-domains.ts';
import { API_TOKEN_ACTIONS } from '../../api/slack/blocks.ts';
import type { IInvitation } from '../../invites/invitation.entity.ts';
import { deliveryGaveUp } from '../../invites/invite.delivery.ts';
import { loginEmail, ROLE_LABEL, STATUS_DESCRIPTION } from '../../people/labels.ts';
import { changeButton, PERSON_ACTIONS } from '../../people/slack/blocks.ts';
import { displayName, type IUser, isPaidRole } from '../../people/user.entity.ts';
import type { ScimStatus } from '../../scim/scim.service.ts';
import { scimHomeBlocks } from '../../scim/slack/blocks.ts';
import type { SeatUsage } from '../../seats/seat.service.ts';
import { requester, SETTINGS_ACTION } from '../../seats/slack/blocks.ts';
import { webhooksHomeBlock } from '../../webhooks/slack/blocks.ts';
import type { HomeData } from '../home.service.ts';

const HELP = [
  '`/invite` invite people by Slack or email',
  '`/contact` add or find contacts',
  '`/seats` seats and pending requests',
  '`/joinlink` post a join link (admins)',
  'Drop a `.csv` file in this DM to import people (admins)',
].join('\n');

/**
 * How much of a long value the tab shows, so that no section or context text passes Slack's 3,000
 * characters (over it Slack refuses the whole tab): ten seat requests of 254-character login emails (whose
 * `&` mrkdwn writes as `&amp;`), with their role and requester, stay under it. Longer values end in "…".
 */
const FIT = { email: 200, name: 200, fileName: 300, domain: 80 } as const;
/** The most of the settings' context the allowed email domains take; the rest are counted. */
const DOMAINS_MAX = 2000;

/** "Allowed email domains: a.test, b.test and 12 more (…)." within {@link DOMAINS_MAX} characters. */
function allowedDomainsLine(domains: string[]): string {
  const shown: string[] = [];
  let length = 0;
  for (const domain of domains) {
    const fitted = escFit(readableDomain(domain), FIT.domain);
    if (length + fitted.length + 2 > DOMAINS_MAX) break;
    shown.push(fitted);
    length += fitted.length + 2;
  }
  const rest = domains.length - shown.length;
  return `Allowed email domains: ${shown.join(', ')}${rest ? ` and ${rest} more (Change settings lists them)` : ''}.`;
}

/** The line saying how many of a list were left out, if any: `…and 490 more (where to see them).` */
function more(total: number, shown: number, where: string): string[] {
  return total > shown ? [`…and ${total - shown} more (${where}).`] : [];
}

/**
 * People whose invitation expired, each with what the viewer may do about it, as on their person card: an
 * admin invites them again (the form takes a seat, or adds one); anyone else asks an admin for the seat, which
 * only a paid role needs (a client's invitation is an admin's to send again).
 */
function expiredBlocks(
  expired: IUser[],
  asked: Map<string, string>,
  total: number,
  viewer: { isAdmin: boolean },
): Block[] {
  const blocks: Block[] = [
    section(`*${viewer.isAdmin ? 'Expired invitations' : 'Your invitations that expired'}* (${total})`),
  ];
  if (expired.length === 0) {
    blocks.push(context('None. An invitation not accepted in time shows here, to be sent again.'));
    return blocks;
  }
  for (const user of expired) {
    const name = displayName(user);
    const who =
      name === user.email
        ? escFit(loginEmail(user.email), FIT.email)
        : `${escFit(name, FIT.name)} (${escFit(loginEmail(user.email), FIT.email)})`;
    const paid = isPaidRole(user.role);
    const askedBy = asked.get(user.id);
    // Asked already: the request waits for an admin, whose Invite again also closes it as done.
    const status = askedBy
      ? ` An admin has been asked to approve a seat (asked by ${/^[UW][A-Z0-9]+$/.test(askedBy) ? `<@${askedBy}>` : esc(askedBy)}).`
      : !viewer.isAdmin && !paid
        ? ' Ask an admin to send it again.'
        : '';
    blocks.push(
      section(
        `• ${who}, ${ROLE_LABEL[user.role]}: the invitation expired${paid ? ' and the seat was freed' : ''}.${status}`,
      ),
    );
    const bringBack = viewer.isAdmin
      ? [{ ...changeButton('Invite again', 'reactivate', user, true), style: 'primary' as const }]
      : paid && !askedBy
        ? [changeButton('Ask an admin to invite again', 'reactivate', user, true)]
        : [];
    blocks.push(
      actions(`home_expired:${user.id}`, ...bringBack, button('Person card', PERSON_ACTIONS.open, user.id)),
    );
  }
  const rest = more(total, expired.length, '`/invite pending` lists them');
  if (rest.length) blocks.push(context(rest.join('\n')));
  return blocks;
}

/**
 * Where an invitation's delivery stands, as `/invite pending` says it: one Roster stopped trying to deliver
 * is not "being delivered", and the admin is told to check the address (the reason is left to
 * `/invite pending` and the inviter's DM).
 */
function delivery(i: IInvitation): string {
  if (i.deliveredAt) return `sent by ${i.deliveryMethod === 'email' ? 'email' : 'Slack DM'}`;
  if (deliveryGaveUp(i))
    return ':warning: delivery failed: check the address on their card, then send it again from `/invite pending`';
  if (i.lastError) return 'delivery failing, retrying';
  return 'being delivered';
}

/** The Home tab of someone of another organisation, met through Slack Connect: Roster is not theirs to use here. */
export function outsiderHomeView(account: IAccount): { type: 'home'; blocks: Block[] } {
  return {
    type: 'home',
    blocks: [
      header('Roster'),
      section(
        `Roster keeps the people of this Slack workspace${account.name ? ` (${escFit(account.name, FIT.name)})` : ''}. You are here through Slack Connect, from another organisation, so it has nothing to show you. If you should be a member here, ask one of this workspace's admins to invite you.`,
      ),
    ],
  };
}

/** The Home tab: everyone sees their own status; admins also see seats, requests, invitations, links and imports. */
export function homeView(
  data: HomeData,
  account: IAccount,
  viewer: { isAdmin: boolean },
  usage: SeatUsage,
  scim?: ScimStatus,
): { type: 'home'; blocks: Block[] } {
  const { me, requests, invitations, links, imports, expired, asked, counts } = data;
  const blocks: Block[] = [header('Roster')];
  blocks.push(
    section(
      me
        ? `*You:* ${escFit(displayName(me), FIT.name)}, ${ROLE_LABEL[me.role]}, ${STATUS_DESCRIPTION[me.status]}.`
        : viewer.isAdmin
          ? '*You:* an admin. You approve seat requests, post join links, import people from CSV files and change the settings below; you are not a user of the account yourself.'
          : '*You:* not in Roster yet. Ask an admin for an invitation, or use a join link posted in a channel.',
    ),
  );
  blocks.push(context(HELP));
  // A non-admin sees the list only when it holds something: most have never invited anyone.
  if (!viewer.isAdmin && counts.expired > 0)
    blocks.push(...expiredBlocks(expired, asked, counts.expired, viewer));

  if (viewer.isAdmin) {
    blocks.push(divider(), header('Seats'));
    blocks.push(
      section(
        `*${usage.used} of ${usage.limit}* paid seats used, ${usage.free} free. Set the limit with \`/seats N\`.${account.approvalChannelId ? ` Requests go to <#${account.approvalChannelId}>.` : ' Requests go to every admin by DM.'}`,
      ),
    );

    blocks.push(section(`*Pending seat requests* (${counts.requests})`));
    blocks.push(
      context(
        requests.length
          ? [
              ...requests.map(
                (r) =>
                  // A join filled in on a link's web form was asked by nobody in Slack: the link is named.
                  `• ${escFit(loginEmail(r.email), FIT.email)}, ${ROLE_LABEL[r.role]}, asked by ${requester(r)}`,
              ),
              ...more(counts.requests, requests.length, 'the oldest are shown first'),
            ].join('\n')
          : 'None. `/seats` lists them with Approve and Reject buttons.',
      ),
    );

    blocks.push(section(`*Pending invitations* (${counts.invitations})`));
    if (invitations.length === 0) {
      blocks.push(context('None. `/invite pending` lists them with Resend and Cancel buttons.'));
    }
    for (const i of invitations) {
      blocks.push({
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `• ${escFit(loginEmail(i.user.getEntity().email), FIT.email)}: ${delivery(i)}, ${i.expiresAt.getTime() <= Date.now() ? 'expired' : 'expires'} ${slackDate(i.expiresAt)}`,
        },
        accessory: button('Person card', PERSON_ACTIONS.open, i.user.id),
      });
    }
    const moreInvitations = more(counts.invitations, invitations.length, '`/invite pending` lists them');
    if (moreInvitations.length) blocks.push(context(moreInvitations.join('\n')));

    blocks.push(...expiredBlocks(expired, asked, counts.expired, viewer));

    blocks.push(section(`*Active join links* (${counts.links})`));
    blocks.push(
      context(
        links.length
          ? [
              ...links.map(
                (l) =>
                  `• ${ROLE_LABEL[l.role]}${l.channelId ? ` in <#${l.channelId}>` : ''}: ${l.uses}${l.maxUses ? ` of ${l.maxUses}` : ''} used, expires ${slackDate(l.expiresAt)}`,
              ),
              ...more(counts.links, links.length, 'the newest are shown first'),
            ].join('\n')
          : 'None. `/joinlink` posts one in a channel.',
      ),
    );

    blocks.push(section('*Recent imports*'));
    blocks.push(
      context(
        imports.length
          ? imports
              .map((i) => `• ${escFit(i.fileName, FIT.fileName)}: ${i.status}, ${slackDate(i.createdAt)}`)
              .join('\n')
          : 'None yet. Drop a `.csv` file in this DM to import people.',
      ),
    );

    blocks.push(divider(), {
      type: 'section',
      text: { type: 'mrkdwn', text: '*Settings*' },
      accessory: button('Change settings', SETTINGS_ACTION, 'settings'),
    });
    blocks.push(
      context(
        [
          `Invitations expire after ${account.invitationExpiryDays} days. New join links last ${account.joinLinkExpiryDays} days${account.joinLinkMaxUses ? ` and admit ${account.joinLinkMaxUses} people` : ''}.`,
          account.allowedEmailDomains.length
            ? allowedDomainsLine(account.allowedEmailDomains)
            : 'Invitations may go to any email domain; a join link may limit its own.',
          `Seat requests: ${account.approvalChannelId ? `<#${account.approvalChannelId}>` : 'DM to every admin'}.`,
        ].join('\n'),
      ),
    );
    if (scim) blocks.push(...scimHomeBlocks(scim));
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: '*API tokens*: let your product read people, contacts and the audit trail.',
      },
      accessory: button('API tokens', API_TOKEN_ACTIONS.open, 'api_tokens'),
    });
    blocks.push(webhooksHomeBlock());
  }
  return { type: 'home' as const, blocks };
}
