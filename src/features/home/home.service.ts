import { raw } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { IAccount } from '../accounts/account.entity.ts';
import { CsvImport, type ICsvImport } from '../csv-import/csv-import.entity.ts';
import { type IInvitation, Invitation } from '../invites/invitation.entity.ts';
import { type IJoinLink, JoinLink } from '../join-links/join-link.entity.ts';
import { normalizeEmail } from '../people/people.service.ts';
import { type IUser, User } from '../people/user.entity.ts';
import { type ISeatRequest, SeatRequest } from '../seats/seat-request.entity.ts';

/** How many pending invitations the tab lists; at this many it says there may be more. */
export const INVITATIONS_SHOWN = 10;

/** Who opened the Home tab: their Slack id, their Slack email if Slack gave it, and whether they are an admin. */
export type HomeViewer = { slackUserId: string; email?: string; isAdmin: boolean };

/** What the Home tab shows: the viewer's own row, and for admins what waits for them. */
export type HomeData = {
  me: IUser | null;
  /** The oldest pending seat requests first, at most 10; empty for a non-admin. */
  requests: ISeatRequest[];
  /** The newest pending invitations, at most {@link INVITATIONS_SHOWN}; empty for a non-admin. */
  invitations: IInvitation[];
  /** Join links neither revoked nor expired, the newest first, at most 10; empty for a non-admin. */
  links: IJoinLink[];
  /** The last 5 CSV imports; empty for a non-admin. */
  imports: ICsvImport[];
};

/** Reads what the Home tab shows; a non-admin's tab reads only their own row. */
export async function homeData(em: EntityManager, account: IAccount, viewer: HomeViewer): Promise<HomeData> {
  const me = await em.findOne(User, {
    account,
    $or: [
      { slackUserId: viewer.slackUserId },
      // The same email whatever its case; compared whole, never as a pattern (an `_` would match any character).
      ...(viewer.email ? [{ [raw('lower(btrim(email))')]: normalizeEmail(viewer.email) }] : []),
    ],
  });
  if (!viewer.isAdmin) return { me, requests: [], invitations: [], links: [], imports: [] };
  const requests = await em.find(
    SeatRequest,
    { account, status: 'pending' },
    { orderBy: { createdAt: 'asc' }, limit: 10 },
  );
  const invitations = await em.find(
    Invitation,
    { account, status: 'pending' },
    { populate: ['user'], orderBy: { createdAt: 'desc' }, limit: INVITATIONS_SHOWN },
  );
  const links = await em.find(
    JoinLink,
    { account, revokedAt: null, expiresAt: { $gt: new Date() } },
    { orderBy: { createdAt: 'desc' }, limit: 10 },
  );
  const imports = await em.find(CsvImport, { account }, { orderBy: { createdAt: 'desc' }, limit: 5 });
  return { me, requests, invitations, links, imports };
}
