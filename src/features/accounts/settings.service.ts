import type { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { DomainError } from '../../shared/errors.ts';
import { audit, auditRefusal } from '../audit/audit.service.ts';
import { parseDomains } from '../join-links/join-link.terms.ts';
import type { Actor, SeatService } from '../seats/seat.service.ts';
import { Account, type IAccount } from './account.entity.ts';
import { atDomains } from './allowed-domains.ts';

export const INVITATION_EXPIRY_DAYS = { min: 1, max: 90 } as const;
export const JOIN_LINK_EXPIRY_DAYS = { min: 1, max: 365 } as const;
export const JOIN_LINK_MAX_USES = 10_000;

export type SettingsInput = {
  approvalChannelId: string | null;
  seatLimit: number;
  allowedDomains: string;
  invitationExpiryDays: number;
  joinLinkExpiryDays: number;
  joinLinkMaxUses: number | null;
};

/** Whether the form's `key` was submitted as the form showed it, so its admin did not change it. */
function left(input: SettingsInput, shown: SettingsInput | null, key: keyof SettingsInput): boolean {
  if (!shown || !(key in shown)) return false;
  const norm = (v: unknown) => (typeof v === 'string' ? v.trim() : v);
  return norm(input[key]) === norm(shown[key]);
}

const whole = (name: string, min: number, max: number) =>
  z
    .number({ error: `Enter ${name} as a whole number.` })
    .int(`Enter ${name} as a whole number.`)
    .min(min, `${name[0]!.toUpperCase()}${name.slice(1)} must be ${min} to ${max}.`)
    .max(max, `${name[0]!.toUpperCase()}${name.slice(1)} must be ${min} to ${max}.`);

const settings = z.object({
  approvalChannelId: z
    .string()
    .regex(/^[CG][A-Z0-9]{2,30}$/, 'Choose a channel.')
    .nullable(),
  seatLimit: whole('the seat limit', 0, 100_000),
  allowedDomains: z.string(),
  invitationExpiryDays: whole(
    'the invitation expiry',
    INVITATION_EXPIRY_DAYS.min,
    INVITATION_EXPIRY_DAYS.max,
  ),
  joinLinkExpiryDays: whole('the join link expiry', JOIN_LINK_EXPIRY_DAYS.min, JOIN_LINK_EXPIRY_DAYS.max),
  joinLinkMaxUses: whole('the number of people a link admits', 1, JOIN_LINK_MAX_USES).nullable(),
});

const FIELD: Record<keyof SettingsInput, string> = {
  approvalChannelId: 'approval_channel',
  seatLimit: 'seat_limit',
  allowedDomains: 'allowed_domains',
  invitationExpiryDays: 'invitation_expiry',
  joinLinkExpiryDays: 'join_link_expiry',
  joinLinkMaxUses: 'join_link_max_uses',
};

/** The account's settings as admins change them from Slack: one form, every change audited. */
export class SettingsService {
  private readonly seats: SeatService;

  constructor(seats: SeatService) {
    this.seats = seats;
  }

  /**
   * What saving `input` would refuse, found by reading only (no lock), so the form shows it on its fields
   * before Slack's 3 s are up; null when it looks possible. save() checks again under the seats' lock.
   */
  async problems(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    input: SettingsInput,
    shown: SettingsInput | null = null,
  ): Promise<DomainError | null> {
    try {
      await refuseNonAdmin(em, account, actor);
      const { valid } = parseSettings(input, shown);
      const usage = await this.seats.usage(em, account);
      if (
        !left(input, shown, 'seatLimit') &&
        valid.seatLimit !== usage.limit &&
        valid.seatLimit < usage.used
      ) {
        return new DomainError(
          'invalid_input',
          `${usage.used} paid seats are in use, so the limit cannot be ${valid.seatLimit}. Deactivate people or make them clients first.`,
          { field: 'seat_limit' },
        );
      }
      return null;
    } catch (err) {
      if (err instanceof DomainError) return err;
      throw err;
    }
  }

  /**
   * Checks and saves the settings; a value out of range is refused on its field with the range named,
   * and nothing is saved. Returns what changed, in words.
   */
  async save(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    input: SettingsInput,
    shown: SettingsInput | null = null,
  ): Promise<string[]> {
    await refuseNonAdmin(em, account, actor);
    const { valid, domains } = parseSettings(input, shown);
    return em.transactional(async (tx) => {
      const current = await tx.findOneOrFail(Account, account.id, { refresh: true });
      const changes: string[] = [];
      if (!left(input, shown, 'seatLimit') && valid.seatLimit !== current.seatLimit) {
        try {
          await this.seats.setLimit(tx, account, valid.seatLimit, actor);
        } catch (err) {
          if (err instanceof DomainError)
            throw new DomainError(err.code, err.message, { field: 'seat_limit' });
          throw err;
        }
        changes.push(`the seat limit is ${valid.seatLimit}`);
      }
      const before = {
        approvalChannelId: current.approvalChannelId ?? null,
        allowedEmailDomains: current.allowedEmailDomains,
        invitationExpiryDays: current.invitationExpiryDays,
        joinLinkExpiryDays: current.joinLinkExpiryDays,
        joinLinkMaxUses: current.joinLinkMaxUses ?? null,
      };
      const typed = {
        approvalChannelId: valid.approvalChannelId,
        allowedEmailDomains: domains.domains,
        invitationExpiryDays: valid.invitationExpiryDays,
        joinLinkExpiryDays: valid.joinLinkExpiryDays,
        joinLinkMaxUses: valid.joinLinkMaxUses,
      };
      // A field left as the form showed it keeps what is saved now: another admin may have changed it since.
      const field = { allowedEmailDomains: 'allowedDomains' } as const;
      const next = Object.fromEntries(
        (Object.keys(typed) as (keyof typeof typed)[]).map((key) => [
          key,
          left(input, shown, key === 'allowedEmailDomains' ? field[key] : key) ? before[key] : typed[key],
        ]),
      ) as typeof typed;
      const changed = (Object.keys(next) as (keyof typeof next)[]).filter(
        (key) => JSON.stringify(before[key]) !== JSON.stringify(next[key]),
      );
      if (changed.length) {
        // Only what this form changed is written: another admin saving other fields at the same moment
        // keeps their change, whichever commits last.
        await tx.nativeUpdate(
          Account,
          { id: account.id },
          Object.fromEntries(changed.map((key) => [key, next[key]])),
        );
        audit(tx, {
          account,
          actor: actor.slackUserId,
          action: 'settings.changed',
          subjectType: 'account',
          subjectId: account.id,
          surface: actor.surface,
          data: Object.fromEntries(changed.map((key) => [key, { from: before[key], to: next[key] }])),
        });
      }
      if (changed.includes('approvalChannelId')) {
        changes.push(
          next.approvalChannelId
            ? `seat requests go to <#${next.approvalChannelId}>`
            : 'seat requests go to every admin by DM',
        );
      }
      if (changed.includes('allowedEmailDomains')) {
        changes.push(
          next.allowedEmailDomains.length
            ? `invitations and joins through join links are for ${atDomains(next.allowedEmailDomains)} addresses`
            : 'invitations may go to any address',
        );
      }
      if (changed.includes('invitationExpiryDays')) {
        changes.push(`new invitations expire after ${next.invitationExpiryDays} days`);
      }
      if (changed.includes('joinLinkExpiryDays') || changed.includes('joinLinkMaxUses')) {
        changes.push(
          `new join links last ${next.joinLinkExpiryDays} days${next.joinLinkMaxUses ? ` and admit ${next.joinLinkMaxUses} people` : ''}`,
        );
      }
      return changes;
    });
  }
}

/**
 * The form's values, checked. Domains left as the form showed them are not: they are kept as saved (see
 * save), and domains an earlier version took, which a stricter check now refuses, block no other change.
 */
function parseSettings(input: SettingsInput, shown: SettingsInput | null) {
  const parsed = settings.safeParse(input);
  const fields: Record<string, string> = {};
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      fields[FIELD[issue.path[0] as keyof SettingsInput] ?? 'seat_limit'] ??= issue.message;
    }
  }
  const domains = left(input, shown, 'allowedDomains')
    ? ({ ok: true, domains: [] } as const)
    : parseDomains(input.allowedDomains ?? '');
  if (!domains.ok) fields.allowed_domains = domains.error;
  if (!parsed.success || !domains.ok) {
    throw new DomainError('invalid_input', Object.values(fields)[0] ?? 'Check the settings.', { fields });
  }
  return { valid: parsed.data, domains };
}

async function refuseNonAdmin(em: EntityManager, account: IAccount, actor: Actor): Promise<void> {
  if (actor.isAdmin) return;
  await auditRefusal(em, {
    account,
    actor: actor.slackUserId,
    action: 'settings.change_refused',
    subjectType: 'account',
    subjectId: account.id,
    surface: actor.surface,
    data: { reason: 'not an admin' },
  });
  throw new DomainError('not_admin', 'Only admins can change the settings.');
}
