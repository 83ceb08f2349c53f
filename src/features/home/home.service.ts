import { raw } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { IAccount } from '../accounts/account.entity.ts';
import { CsvImport, type ICsvImport } from '../csv-import/csv-import.entity.ts';
import { type IInvitation, Invitation } from '../invites/invitation.entity.ts';
import { type IJoinLink, JoinLink } from '../join-links/join-link.entity.ts';
import { normalizeEmail } from '../people/people.service.ts';
import { type IUser, User } from '../people/user.entity.ts';
import { type ISeatRequest, SeatRequest } from '../seats/seat-request.entity.ts';

/** How many of each list the tab shows; past it, the tab says how many more there are. */
export const SHOWN = { requests: 10, invitations: 10, links: 10, expired: 10 } as const;

/** Who opened the Home tab: their Slack id, their Slack email if Slack gave it, and whether they are an admin. */
export type HomeViewer = { slackUserId: string; email?: string; isAdmin: boolean };

/** What the Home tab shows: the viewer's own row, and for admins what waits for them. */
export type HomeData = {
  me: IUser | null;
  /** The oldest pending seat requests first, at most {@link SHOWN}; empty for a non-admin. */
  requests: ISeatRequest[];
  /** The newest pending invitations, at most {@link SHOWN}; empty for a non-admin. */
  invitations: IInvitation[];
  /** Join links neither revoked nor expired, the newest first, at most {@link SHOWN}; empty for a non-admin. */
  links: IJoinLink[];
  /**
   * People whose invitation expired, the most recently changed first, at most {@link SHOWN}: every one of
   * the account for an admin, the ones the viewer added for anyone else.
   */
  expired: IUser[];
  /** Of the expired people shown, those a seat request waits for: their id, and who asked. */
  asked: Map<string, string>;
  /** How many of each there are in all, the ones not shown included. */
  counts: { requests: number; invitations: number; links: number; expired: number };
  /** The last 5 CSV imports; empty for a non-admin. */
  imports: ICsvImport[];
};

/** Reads what the Home tab shows; a non-admin's tab reads only their own row. */
export async function homeData(em: EntityManager, account: IAccount, viewer: HomeViewer): Promise<HomeData> {
  // The user linked to their Slack account first: another user may have their Slack email (their login was
  // changed in Roster, and the address given to someone since). Else the one with their Slack email, unless
  // that user is another Slack account's (someone who left, whose address was given to a newcomer).
  const me =
    (await em.findOne(
      User,
      { account, slackUserId: viewer.slackUserId },
      { orderBy: { createdAt: 'asc' } },
    )) ??
    (viewer.email
      ? // The same email whatever its case; compared whole, never as a pattern (an `_` would match any character).
        await em.findOne(User, {
          account,
          [raw('lower(btrim(email))')]: normalizeEmail(viewer.email),
          slackUserId: null,
        })
      : null);
  // Someone else's expired invitations are not a non-admin's to see: only the ones they sent.
  const expiredUsers = {
    account,
    status: 'expired',
    ...(viewer.isAdmin ? {} : { addedBy: viewer.slackUserId }),
  } as const;
  const expired = await em.find(User, expiredUsers, {
    orderBy: { updatedAt: 'desc', id: 'desc' },
    limit: SHOWN.expired,
  });
  const expiredCount = expired.length < SHOWN.expired ? expired.length : await em.count(User, expiredUsers);
  const waiting = expired.length
    ? await em.find(SeatRequest, { account, status: 'pending', user: { $in: expired.map((u) => u.id) } })
    : [];
  const asked = new Map(waiting.flatMap((r) => (r.user ? [[r.user.id, r.requestedBy] as const] : [])));
  if (!viewer.isAdmin) {
    return {
      me,
      requests: [],
      invitations: [],
      links: [],
      imports: [],
      expired,
      asked,
      counts: { requests: 0, invitations: 0, links: 0, expired: expiredCount },
    };
  }
  const pendingRequests = { account, status: 'pending' } as const;
  const requests = await em.find(SeatRequest, pendingRequests, {
    orderBy: { createdAt: 'asc' },
    limit: SHOWN.requests,
  });
  const pendingInvitations = { account, status: 'pending' } as const;
  const invitations = await em.find(Invitation, pendingInvitations, {
    populate: ['user'],
    orderBy: { createdAt: 'desc' },
    limit: SHOWN.invitations,
  });
  // A link whose message was never recorded is not one people can be pointed to (see closeUnposted).
  const activeLinks = { account, revokedAt: null, messageTs: { $ne: null }, expiresAt: { $gt: new Date() } };
  const links = await em.find(JoinLink, activeLinks, { orderBy: { createdAt: 'desc' }, limit: SHOWN.links });
  const imports = await em.find(CsvImport, { account }, { orderBy: { createdAt: 'desc' }, limit: 5 });
  // A full page may not be all there is: those are counted.
  const counts = {
    requests:
      requests.length < SHOWN.requests ? requests.length : await em.count(SeatRequest, pendingRequests),
    invitations:
      invitations.length < SHOWN.invitations
        ? invitations.length
        : await em.count(Invitation, pendingInvitations),
    links: links.length < SHOWN.links ? links.length : await em.count(JoinLink, activeLinks),
    expired: expiredCount,
  };
  return { me, requests, invitations, links, imports, expired, asked, counts };
}
