import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { baseProperties } from '../../db/base.ts';

/** One per Slack workspace: the seat limit and the account's settings. */
export const Account = defineEntity({
  name: 'Account',
  tableName: 'account',
  properties: {
    ...baseProperties,
    teamId: p.string().unique(),
    name: p.string().nullable(),
    /** When Slack said `name` (a team_rename's event_time, a team.info answer): an older rename is ignored. */
    nameSetAt: p.datetime().nullable(),
    seatLimit: p.integer().default(0),
    approvalChannelId: p.string().nullable(),
    allowedEmailDomains: p.array().default([]),
    invitationExpiryDays: p.integer().default(7),
    /** Terms a new join link starts with; the admin may change them on the form. */
    joinLinkExpiryDays: p.integer().default(30),
    joinLinkMaxUses: p.integer().nullable(),
  },
});
export type IAccount = InferEntity<typeof Account>;

export const DEFAULT_PERMISSION_SETS = ['Admin', 'Manager', 'Member', 'Client'] as const;

/** A named set of permissions within an account; `Admin` makes its holders Roster admins. */
export const PermissionSet = defineEntity({
  name: 'PermissionSet',
  tableName: 'permission_set',
  properties: {
    ...baseProperties,
    account: () => p.manyToOne(Account).ref(),
    name: p.string(),
    isAdmin: p.boolean().default(false),
  },
});
export type IPermissionSet = InferEntity<typeof PermissionSet>;

/** The Slack workspace this app is installed in, as `auth.test` reported it. Tokens stay in the environment. */
export const SlackInstallation = defineEntity({
  name: 'SlackInstallation',
  tableName: 'slack_installation',
  properties: {
    ...baseProperties,
    teamId: p.string().unique(),
    teamName: p.string().nullable(),
    enterpriseId: p.string().nullable(),
    appId: p.string().nullable(),
    botUserId: p.string(),
    botId: p.string().nullable(),
  },
});
export type ISlackInstallation = InferEntity<typeof SlackInstallation>;
