import { ref } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { isEmailAddress } from '../../shared/email.ts';
import { DomainError } from '../../shared/errors.ts';
import { type IAccount, type IPermissionSet, PermissionSet } from '../accounts/account.entity.ts';
import { refuseOutsideDomains } from '../accounts/allowed-domains.ts';
import { audit } from '../audit/audit.service.ts';
import { AuditEvent, type IAuditEvent } from '../audit/audit-event.entity.ts';
import { Contact, type IContact } from '../contacts/contact.entity.ts';
import { optionalText } from '../contacts/contact.service.ts';
import { Invitation } from '../invites/invitation.entity.ts';
import { type PersonSyncState, personSyncState } from '../scim/scim.service.ts';
import type { Actor, SeatService } from '../seats/seat.service.ts';
import { FIELD_MAX, keptOrNew } from './field-limits.ts';
import { type GuestCheck, permissionSetToGrant, refuseAdminSetForGuest } from './grants.ts';
import { deactivateLocked, findContactByEmail, findUserByEmail, lockUser } from './people.service.ts';
import { refuseChangedSince } from './shown.ts';
import { displayName, type IUser, isPlaceholderLogin, User } from './user.entity.ts';

export const HISTORY_SIZE = 20;

/** A person's details as an admin edits them; the same limits as the contact form. */
export const detailsInput = z.object({
  firstName: optionalText(FIELD_MAX.firstName),
  lastName: optionalText(FIELD_MAX.lastName),
  title: optionalText(FIELD_MAX.title),
  phone: optionalText(FIELD_MAX.phone),
  company: optionalText(FIELD_MAX.company),
  notes: optionalText(FIELD_MAX.notes),
});
export type DetailsInput = z.infer<typeof detailsInput>;

export type PersonCard = {
  user: IUser;
  permissionSet: IPermissionSet | null;
  contact: IContact | null;
  invitation: { expiresAt: Date; deliveryMethod: string | null | undefined } | null;
  history: IAuditEvent[];
  /** Where they stand with the connected SCIM service; null without one. */
  scim: PersonSyncState | null;
};

/**
 * One person as an admin sees them, and the changes that take no seat: deactivating, the permission set,
 * the details and the login email. Changes that need a seat go through PeopleChanges and the seat rules.
 */
export class PersonService {
  private readonly seats: SeatService;
  private readonly now: () => Date;

  private guests?: GuestCheck;

  constructor(seats: SeatService, now: () => Date = () => new Date()) {
    this.seats = seats;
    this.now = now;
  }

  /** How a guest in Slack is told apart; registered in the composition root (this service knows no Slack). */
  checkGuests(check: GuestCheck): void {
    this.guests = check;
  }

  /**
   * Why `permissionSetId` may not be given to the person `userId`, or null: a set that makes its holder an
   * admin, for a guest in Slack. Reads only (and may ask Slack), so a form can show it before its ack; the
   * change checks it again.
   */
  async permissionSetProblem(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    userId: string,
    permissionSetId: string,
  ): Promise<DomainError | null> {
    // Only an admin gives sets; the change itself refuses, and records, anyone else.
    if (!actor.isAdmin) return null;
    if (!z.uuid().safeParse(userId).success || !z.uuid().safeParse(permissionSetId).success) return null;
    const [user, set] = await Promise.all([
      em.findOne(User, { id: userId, account }),
      em.findOne(PermissionSet, { id: permissionSetId, account }),
    ]);
    if (!user || !set?.isAdmin) return null;
    // Before the form's answer, from the directory mirror alone: a guest status only Slack can tell is
    // asked when the change is made, after the answer, and its refusal comes by DM.
    const guest = await this.guestOf(em, account, user, { askSlack: false });
    if (guest === 'unknown') return null;
    try {
      await refuseAdminSetForGuest(em, account, actor, set, guest, user.email);
      return null;
    } catch (err) {
      if (err instanceof DomainError) return err;
      throw err;
    }
  }

  /** The account's permission set `id` when it makes its holder an admin, else null (also for a bad id). */
  async adminSetNamed(em: EntityManager, account: IAccount, id: string): Promise<IPermissionSet | null> {
    if (!z.uuid().safeParse(id).success) return null;
    const set = await em.findOne(PermissionSet, { id, account });
    return set?.isAdmin ? set : null;
  }

  /** Whether `user`'s Slack account is a guest's; asked before a transaction, which never waits on Slack. */
  private async guestOf(em: EntityManager, account: IAccount, user: IUser, opts?: { askSlack: boolean }) {
    if (!this.guests) return null;
    const email = isPlaceholderLogin(user.email) ? null : user.email;
    return this.guests(em, account, { slackUserId: user.slackUserId, email }, opts);
  }

  /** The user of the account with this email, or behind this Slack id; null when there is none. */
  async find(
    em: EntityManager,
    account: IAccount,
    by: { email?: string; slackUserId?: string },
  ): Promise<IUser | null> {
    if (by.slackUserId) {
      const bySlack = await em.findOne(User, { account, slackUserId: by.slackUserId });
      if (bySlack) return bySlack;
    }
    return by.email ? findUserByEmail(em, account, by.email) : null;
  }

  /** Everything the person card shows, looked up within the account. */
  async card(em: EntityManager, account: IAccount, userId: string): Promise<PersonCard> {
    const user = z.uuid().safeParse(userId).success
      ? await em.findOne(User, { id: userId, account }, { populate: ['permissionSet'] })
      : null;
    if (!user) throw new DomainError('not_found', 'That person is no longer in Roster.');
    const contact = await em.findOne(Contact, { account, user });
    const invitations = await em.find(Invitation, { account, user }, { orderBy: { createdAt: 'desc' } });
    const pending = invitations.find((i) => i.status === 'pending');
    const subjects = [user.id, ...invitations.map((i) => i.id), ...(contact ? [contact.id] : [])];
    const history = await em.find(
      AuditEvent,
      { account, subjectId: { $in: subjects } },
      { orderBy: { createdAt: 'desc', id: 'desc' }, limit: HISTORY_SIZE },
    );
    return {
      user,
      permissionSet: user.permissionSet?.isInitialized() ? user.permissionSet.getEntity() : null,
      contact,
      invitation: pending ? { expiresAt: pending.expiresAt, deliveryMethod: pending.deliveryMethod } : null,
      history,
      scim: await personSyncState(em, account.id, user.id),
    };
  }

  /**
   * Deactivates a person: their seat is freed, a pending invitation cancelled and seat requests about them
   * closed, in one transaction (deactivateLocked, as when Slack deactivates them).
   * Says whether they were active, so whoever asked can tell them. Deactivating twice changes nothing.
   */
  async deactivate(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    userId: string,
  ): Promise<{ user: IUser; wasActive: boolean; seatFreed: boolean; already: boolean }> {
    requireAdmin(actor, 'deactivate people');
    return em.transactional(async (tx) => {
      const requestIds = z.uuid().safeParse(userId).success
        ? await this.seats.lockRequestsAbout(tx, account, userId)
        : [];
      const user = await this.locked(tx, account, userId);
      if (user.status === 'deactivated') return { user, wasActive: false, seatFreed: false, already: true };
      const { before, seatFreed } = await deactivateLocked(tx, this.seats, account, user, actor, {
        now: this.now(),
        requestIds,
      });
      return { user, wasActive: before === 'active', seatFreed, already: false };
    });
  }

  /** Gives a person another permission set; a set that makes its holder an admin only from an admin. */
  async changePermissionSet(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    userId: string,
    permissionSetId: string,
    /** `shownSetId`: the set the form showed (null: none); the person must still have it. */
    opts: { shownSetId?: string | null } = {},
  ): Promise<{ user: IUser; set: IPermissionSet; changed: boolean }> {
    requireAdmin(actor, 'change permission sets');
    // Whether they are a guest in Slack is asked before the transaction, which never waits on Slack; who
    // a person is in Slack does not change with the rows locked below.
    const before = z.uuid().safeParse(userId).success
      ? await em.findOne(User, { id: userId, account })
      : null;
    const guest = before ? await this.guestOf(em, account, before) : null;
    return em.transactional(async (tx) => {
      const user = await this.locked(tx, account, userId);
      if (opts.shownSetId !== undefined)
        refuseChangedSince(user, { of: 'permission_set', value: opts.shownSetId });
      const set = await permissionSetToGrant(tx, account, actor, permissionSetId, user.email);
      if (!set)
        throw new DomainError('invalid_input', 'Choose a permission set.', { field: 'permission_set' });
      await refuseAdminSetForGuest(em, account, actor, set, guest, user.email);
      const from = user.permissionSet?.id ?? null;
      if (from === set.id) return { user, set, changed: false };
      user.permissionSet = ref(set);
      audit(tx, {
        account,
        actor: actor.slackUserId,
        action: 'user.permission_set_changed',
        subjectType: 'user',
        subjectId: user.id,
        surface: actor.surface,
        data: { email: user.email, from, to: set.id, set: set.name, grantsAdmin: set.isAdmin },
      });
      return { user, set, changed: true };
    });
  }

  /**
   * Edits a person's names, title and phone, and the company and notes kept on their linked contact
   * details (created the first time they are needed). Returns the fields that changed. A field left empty
   * keeps a stored value too long for the form to have shown it (`keptOrNew`), and one in `untouched` (left
   * as the form showed it) keeps what the person holds now.
   */
  async editDetails(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    userId: string,
    raw: Record<string, unknown>,
    opts: { untouched?: ReadonlySet<string> } = {},
  ): Promise<{ user: IUser; changed: string[] }> {
    requireAdmin(actor, "edit people's details");
    const input = parseDetails(raw);
    return em.transactional(async (tx) => {
      const user = await this.locked(tx, account, userId);
      const changed: string[] = [];
      for (const key of ['firstName', 'lastName', 'title', 'phone'] as const) {
        if (opts.untouched?.has(key)) continue;
        const value = keptOrNew(user[key], input[key], FIELD_MAX[key]);
        if ((user[key] ?? null) !== value) {
          user[key] = value;
          changed.push(key);
        }
      }
      let contact = await tx.findOne(Contact, { account, user });
      const contactBefore = contact;
      const contactChanges: Record<string, { from: string | null; to: string | null }> = {};
      for (const key of ['company', 'notes'] as const) {
        if (opts.untouched?.has(key)) input[key] = contact?.[key] ?? null;
      }
      if (!contact && (input.company || input.notes)) {
        contact = tx.create(Contact, {
          account,
          user,
          // A label for the contact details, the person's names stay whole on the user: two names of
          // 255 characters each would not fit the contact's name.
          name: displayName(user).slice(0, FIELD_MAX.name),
          email: null,
          addedBy: actor.slackUserId,
        });
      }
      for (const key of ['company', 'notes'] as const) {
        const value = keptOrNew(contact?.[key], input[key], FIELD_MAX[key]);
        if (contact && (contact[key] ?? null) !== value) {
          contactChanges[key] = { from: contact[key] ?? null, to: value };
          contact[key] = value;
          changed.push(key);
        }
      }
      // The contact they were converted from changed too: said as a contact's edit (the contact.updated
      // webhook, the contact's history), as an edit through /contact would be.
      if (contactBefore && Object.keys(contactChanges).length) {
        audit(tx, {
          account,
          actor: actor.slackUserId,
          action: 'contact.edited',
          subjectType: 'contact',
          subjectId: contactBefore.id,
          surface: actor.surface,
          data: { changes: contactChanges },
        });
      }
      if (changed.length) {
        audit(tx, {
          account,
          actor: actor.slackUserId,
          action: 'user.edited',
          subjectType: 'user',
          subjectId: user.id,
          surface: actor.surface,
          data: { email: user.email, changed },
        });
      }
      return { user, changed };
    });
  }

  /**
   * Changes the email a person logs in with. A pending invitation went to the old address, so it is
   * cancelled; the admin sends a new one. Another user or contact with the new address is a clash. The
   * contact they were converted from takes the new address too. A change of letter case only
   * (`Ana.Silva@…` for `ana.silva@…`) is the same mailbox: the address is rewritten as typed and a pending
   * invitation stays valid.
   */
  async changeEmail(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    userId: string,
    newEmail: string,
    /** `shownEmail`: the fingerprint of the login email the form showed (shownPrint); it must still be theirs. */
    opts: { shownEmail?: string } = {},
  ): Promise<{ user: IUser; from: string; invitationCancelled: boolean }> {
    requireAdmin(actor, "change people's login email");
    const email = validEmail(newEmail);
    try {
      return await em.transactional(async (tx) => {
        // A seat request about them (to unlock or reactivate them) follows them to the new address: locked
        // first, in the order an approval takes them.
        const requestIds = z.uuid().safeParse(userId).success
          ? await this.seats.lockRequestsAbout(tx, account, userId)
          : [];
        const user = await this.locked(tx, account, userId);
        if (opts.shownEmail !== undefined) refuseChangedSince(user, { of: 'email', value: opts.shownEmail });
        const from = user.email;
        await refuseEmail(tx, account, user, email);
        const sameMailbox = sameAddress(from, email);
        if (requestIds.length && !sameMailbox) await this.seats.readdress(tx, account, userId, email);
        const pending = sameMailbox ? [] : await tx.find(Invitation, { user, status: 'pending' });
        for (const invitation of pending) {
          invitation.status = 'cancelled';
          invitation.cancelledAt = this.now();
        }
        if (pending.length && user.status === 'invited') user.status = 'not_invited';
        user.email = email;
        // The contact they were converted from holds their login email: it moves with it, so the old
        // address is free for someone else and the contact's Edit form does not refuse its own email.
        const contact = await tx.findOne(Contact, { account, user });
        const contactMoved = Boolean(contact?.email);
        if (contact?.email) {
          if (contact.email !== email) {
            audit(tx, {
              account,
              actor: actor.slackUserId,
              action: 'contact.edited',
              subjectType: 'contact',
              subjectId: contact.id,
              surface: actor.surface,
              data: { changes: { email: { from: contact.email, to: email } } },
            });
          }
          contact.email = email;
        }
        // An imported user without a login has one now, and can be unlocked and invited.
        user.loginMissing = false;
        user.loginHint = null;
        audit(tx, {
          account,
          actor: actor.slackUserId,
          action: 'user.email_changed',
          subjectType: 'user',
          subjectId: user.id,
          surface: actor.surface,
          data: {
            from,
            to: email,
            invitationsCancelled: pending.length,
            ...(contactMoved ? { contactId: contact!.id } : {}),
          },
        });
        await tx.flush();
        return { user, from, invitationCancelled: pending.length > 0 };
      });
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException) {
        throw new DomainError('conflict', `${email} was just given to someone else.`, { field: 'email' });
      }
      throw err;
    }
  }

  /**
   * Why changing the person's login email to `newEmail` would be refused, found by reading only, so the form
   * can show it at once; null when it looks possible. changeEmail checks again under the person's lock.
   */
  async emailProblem(
    em: EntityManager,
    account: IAccount,
    userId: string,
    newEmail: string,
  ): Promise<DomainError | null> {
    try {
      const email = validEmail(newEmail);
      const user = z.uuid().safeParse(userId).success
        ? await em.findOne(User, { id: userId, account })
        : null;
      if (!user) throw new DomainError('not_found', 'That person is no longer in Roster.');
      await refuseEmail(em, account, user, email);
      if (sameAddress(user.email, email)) return null;
      return await this.seats.readdressProblem(em, account, user.id, email);
    } catch (err) {
      if (err instanceof DomainError) return err;
      throw err;
    }
  }

  /** The user, locked for the rest of the transaction so a concurrent change waits for this one. */
  private async locked(tx: EntityManager, account: IAccount, userId: string): Promise<IUser> {
    const user = z.uuid().safeParse(userId).success ? await lockUser(tx, account, userId) : null;
    if (!user) throw new DomainError('not_found', 'That person is no longer in Roster.');
    await tx.populate(user, ['permissionSet']);
    return user;
  }
}

function requireAdmin(actor: Actor, what: string): void {
  if (!actor.isAdmin) throw new DomainError('not_admin', `Only admins can ${what}.`);
}

/** A person's details, checked against the form's limits; a refusal names each field that is off. */
export function parseDetails(raw: Record<string, unknown>): DetailsInput {
  const parsed = detailsInput.safeParse(raw);
  if (parsed.success) return parsed.data;
  const fields: Record<string, string> = {};
  for (const issue of parsed.error.issues) fields[String(issue.path[0])] ??= issue.message;
  throw new DomainError('invalid_input', Object.values(fields)[0] ?? 'Check the details.', { fields });
}

function sameAddress(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}

function validEmail(raw: string): string {
  const email = raw.trim();
  if (email.length > 254 || !isEmailAddress(email)) {
    throw new DomainError('invalid_input', 'Enter a valid email address, like name@example.com.', {
      field: 'email',
    });
  }
  return email;
}

/**
 * Refuses a login email the person already has, one outside the account's allowed email domains, or one
 * another user or contact of the account has.
 */
async function refuseEmail(em: EntityManager, account: IAccount, user: IUser, email: string): Promise<void> {
  if (user.email.trim() === email) {
    throw new DomainError('conflict', `${email} is already their login email.`, { field: 'email' });
  }
  // Only its letter case changes: the same mailbox, which nobody else can hold.
  if (sameAddress(user.email, email)) return;
  await refuseOutsideDomains(em, account, email, 'email');
  const clash = await findUserByEmail(em, account, email);
  if (clash) {
    throw new DomainError('conflict', `${email} is already the login of ${displayName(clash)}.`, {
      field: 'email',
    });
  }
  // Any contact with the address but the one this person was converted from (a contact of nobody too).
  const contactClash = await findContactByEmail(em, account, email);
  if (contactClash && contactClash.user?.id !== user.id) {
    throw new DomainError(
      'conflict',
      `${email} belongs to the contact ${contactClash.name}: convert that contact instead, or change its email first.`,
      { field: 'email' },
    );
  }
}
