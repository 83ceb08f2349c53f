import type { Member } from '../../src/features/directory/directory.service.ts';

/** A member as Roster's directory mirror keeps them: a full member (no guest, admin or bot) of `teamIds`. */
export const mirroredMember = (slackUserId: string, email: string, teamIds: string[]): Member => ({
  slackUserId,
  email,
  name: null,
  title: null,
  phone: null,
  isAdmin: false,
  isOwner: false,
  isBot: false,
  deleted: false,
  teamIds,
  isRestricted: false,
  isUltraRestricted: false,
});
