import { actions, type Block, button, context, esc, escFit, section } from '../../../slack/blocks.ts';
import { showMore } from '../../../slack/paging.ts';
import { INVITE_ACTIONS } from '../../invites/slack/blocks.ts';
import { loginEmail, ROLE_LABEL, statusText } from '../../people/labels.ts';
import { PERSON_ACTIONS } from '../../people/slack/blocks.ts';
import type { SearchHit } from '../contact.search.ts';

export const CONTACT_ACTIONS = {
  convert: 'contact_convert',
  edit: 'contact_edit',
  more: 'contact_find_more',
  add: 'contact_add_open',
} as const;

/** Longer than any name, email or company a person would start typing. */
export const MAX_SEARCH = 100;

/**
 * How much of a name or company a result shows: a name may hold 511 characters and a company 255, and each
 * `&` is five once escaped, so at full length one result could pass Slack's 3,000 characters for a section
 * and have Slack refuse the whole list, for everyone whose search finds it.
 */
const FIT = { name: 300, company: 200 } as const;

/** Search results, with the buttons that fit each: convert and edit contacts, send or resend invitations. */
export function findResults(
  text: string,
  hits: SearchHit[],
  offset: number,
  more: boolean,
  viewer: { slackUserId: string; isAdmin: boolean },
): { text: string; blocks: Block[] } {
  if (hits.length === 0 && offset === 0) {
    return {
      text: `No contact or user matches “${esc(text)}”.`,
      blocks: [
        section(`No contact or user matches “${esc(text)}”.`),
        actions('contact_none', button('Add contact', CONTACT_ACTIONS.add, text.slice(0, 150), 'primary')),
      ],
    };
  }
  if (hits.length === 0) {
    // A Show more pressed after the matches it would list were removed or renamed.
    const none = `No more matches for “${esc(text)}” after the first ${offset}. Search again with \`/contact find ${esc(text)}\`.`;
    return { text: none, blocks: [section(none)] };
  }
  const blocks: Block[] = [
    section(
      `*Matches for “${esc(text)}”* (${offset + 1}–${offset + hits.length}${more ? ', more below' : ''})`,
    ),
  ];
  for (const hit of hits) {
    const details = [
      ...(hit.email ? [esc(hit.kind === 'user' ? loginEmail(hit.email) : hit.email)] : []),
      ...(hit.company ? [escFit(hit.company, FIT.company)] : []),
    ].join(' · ');
    const name = escFit(hit.name, FIT.name);
    if (hit.kind === 'contact') {
      blocks.push(
        section(
          `*${name}*${details ? ` · ${details}` : ''}\nContact${hit.convertedTo ? `, converted to user ${esc(loginEmail(hit.convertedTo.email))}, ${statusText(hit.convertedTo.status)}` : ''}`,
        ),
      );
      blocks.push(
        actions(
          `contact:${hit.id}`,
          ...(hit.convertedTo ? [] : [button('Convert to user', CONTACT_ACTIONS.convert, hit.id)]),
          button('Edit', CONTACT_ACTIONS.edit, hit.id),
        ),
      );
    } else {
      const line = `*${name}*${details ? ` · ${details}` : ''}\nUser, ${ROLE_LABEL[hit.role]}, ${statusText(hit.status)}`;
      // Only the invitation's sender (whoever added them) and admins may send it: others get no button they
      // would be refused on.
      const mayInvite = viewer.isAdmin || hit.addedBy === viewer.slackUserId;
      const invite = !mayInvite
        ? []
        : hit.status === 'invited'
          ? [button('Resend invitation', INVITE_ACTIONS.resend, hit.id)]
          : hit.status === 'not_invited'
            ? [button('Send invitation', INVITE_ACTIONS.send, hit.id)]
            : [];
      blocks.push(
        section(line),
        actions(`user:${hit.id}`, button('Person card', PERSON_ACTIONS.open, hit.id), ...invite),
      );
    }
  }
  if (more) {
    blocks.push(
      showMore('contact_more', CONTACT_ACTIONS.more, { q: text.slice(0, 150), o: offset + hits.length }),
    );
  } else {
    blocks.push(context('That is all.'));
  }
  return { text: `Matches for “${esc(text)}”`, blocks };
}
