import { type EntityManager, UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { retryDeadlocks } from '../../db/deadlock.ts';
import { query, sql } from '../../db/sql.ts';
import { isEmailAddress } from '../../shared/email.ts';
import { DomainError } from '../../shared/errors.ts';
import type { JobQueue } from '../../shared/jobs.ts';
import { showsSomething } from '../../shared/visible.ts';
import { type IAccount, type IPermissionSet, PermissionSet } from '../accounts/account.entity.ts';
import { outsideAllowedDomains, refuseOutsideDomains } from '../accounts/allowed-domains.ts';
import { audit } from '../audit/audit.service.ts';
import { queueInvitation } from '../invites/invitation.service.ts';
import { FIELD_MAX, keptOrNew } from '../people/field-limits.ts';
import { type GuestCheck, permissionSetToGrant, refuseAdminSetForGuest } from '../people/grants.ts';
import { statusLabel } from '../people/labels.ts';
import { createUser, findContactByEmail, findUserByEmail, normalizeEmail } from '../people/people.service.ts';
import { displayName, type IUser, isPaidRole, ROLES, type Role } from '../people/user.entity.ts';
import type { Actor, SeatFlow, SeatService } from '../seats/seat.service.ts';
import { type ISeatRequest, SeatRequest } from '../seats/seat-request.entity.ts';
import { Contact, type IContact } from './contact.entity.ts';
import { type SearchHit, searchPeople } from './contact.search.ts';

/**
 * An optional text field of a form: trimmed, at most `max` characters, empty as null. A value of only
 * invisible characters (zero-width spaces, direction marks) is empty too: saved, it would show as a blank.
 */
export const optionalText = (max: number) =>
  z
    .string()
    .trim()
    .max(max, `Keep it under ${max} characters.`)
    .optional()
    .nullable()
    .transform((v) => (v && showsSomething(v) ? v : null));

/** Whether `id` can be a row's id: anything else from a request is a contact that does not exist. */
const isId = (id: string) => z.uuid().safeParse(id).success;

export const contactInput = z.object({
  name: z
    .string()
    .trim()
    .min(1, 'Enter a name.')
    .max(FIELD_MAX.name, `Keep it under ${FIELD_MAX.name} characters.`)
    .refine(showsSomething, 'Enter a name: this one is only spaces or invisible characters.'),
  email: z
    .string()
    .trim()
    .optional()
    .nullable()
    .transform((v) => v || null)
    .refine((v) => v === null || v.length <= FIELD_MAX.email, `Keep it under ${FIELD_MAX.email} characters.`)
    .refine((v) => v === null || isEmailAddress(v), 'Enter a valid email address, or leave it empty.'),
  phone: optionalText(FIELD_MAX.phone),
  company: optionalText(FIELD_MAX.company),
  title: optionalText(FIELD_MAX.title),
  notes: optionalText(FIELD_MAX.notes),
});
export type ContactInput = z.infer<typeof contactInput>;
const CONTACT_FIELDS = ['name', 'email', 'phone', 'company', 'title', 'notes'] as const;

export type ConvertInput = {
  role: Role;
  permissionSetId?: string | null;
  sendNow: boolean;
  /** Only for a contact that has no email yet. */
  email?: string | null;
  /**
   * The contact's email as the form showed it (null: none): a contact whose email changed since is not
   * converted, so the invitation never goes to an address the person did not see. Undefined: not checked.
   */
  shownEmail?: string | null;
};

/**
 * Why a conversion request no longer fits its contact: the contact's email was changed since the request
 * was filed, and the admin deciding it sees the address it was filed for, not the new one. Null when it fits.
 */
function movedFrom(contact: IContact, request: ISeatRequest): string | null {
  if (normalizeEmail(contact.email ?? '') === normalizeEmail(request.email)) return null;
  return `${contact.name}'s email was changed to ${contact.email} after this request for ${request.email} was filed, so it is not approved: nobody is given a seat at an address no admin saw. Whoever still wants them converted can ask again.`;
}

/** Contacts: people without a login, found alongside users and converted into users through the seat rules. */
export class ContactService {
  private readonly seats: SeatService;
  private readonly jobs: JobQueue;

  private guests?: GuestCheck;

  constructor(seats: SeatService, jobs: JobQueue) {
    this.seats = seats;
    this.jobs = jobs;
  }

  /** How a guest in Slack is told apart; registered in the composition root (this service knows no Slack). */
  checkGuests(check: GuestCheck): void {
    this.guests = check;
  }

  /**
   * Refuses (audited, on the permission set field) a set that makes its holder an admin for an address that
   * is a guest's in Slack, as /invite and the person card do. Asks Slack, so never inside a transaction;
   * with `askSlack: false` (before a form's answer) from the directory mirror alone, leaving a status only
   * Slack can tell to the conversion itself.
   */
  private async refuseAdminSetForGuest(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    set: IPermissionSet | null,
    email: string | null,
    opts: { askSlack: boolean } = { askSlack: true },
  ): Promise<void> {
    if (!set?.isAdmin || !email || !this.guests) return;
    const guest = await this.guests(em, account, { email }, opts);
    if (guest === 'unknown' && !opts.askSlack) return;
    await refuseAdminSetForGuest(em, account, actor, set, guest, email);
  }

  /** What approving a seat request to convert a contact does; registered in the composition root. */
  seatFlow(): SeatFlow {
    return {
      // Asked before a seat is taken: a contact converted, or an address invited, since the request was
      // filed needs no seat now; a contact that lost its email cannot be converted as asked. Either way the
      // request is closed saying why, rather than left waiting or approved for nothing.
      refuse: async (tx, request, account) => {
        const contactId = request.payload.contactId;
        const contact =
          typeof contactId === 'string' && isId(contactId)
            ? await tx.findOne(Contact, { id: contactId, account }, { populate: ['user'], refresh: true })
            : null;
        if (!contact) return `The contact for ${request.email} no longer exists.`;
        if (contact.user) {
          return `${contact.name} was already converted: they are the user ${contact.user.getEntity().email}, so there is nothing to approve.`;
        }
        if (!contact.email) return `${contact.name} no longer has an email address.`;
        const moved = movedFrom(contact, request);
        if (moved) return moved;
        const existing = await findUserByEmail(tx, account, contact.email);
        if (existing) {
          return `${contact.email} is already a user (${statusLabel(existing.status)}), so there is nothing to approve.`;
        }
        // The allowed email domains changed since the request was filed: approving could never succeed.
        return outsideAllowedDomains(tx, account, contact.email);
      },
      // The admin approved: convert as the requester asked, unless the contact became a user meanwhile.
      approve: async (tx, request, account) => {
        // The approval holds the account's seats already; the contact is locked after them, as in convert.
        const contactId = request.payload.contactId as string;
        const [locked] = await query<{ id: string }>(
          tx,
          sql`select id from contact where id = ${contactId} and account_id = ${account.id} for update`,
        );
        const contact = locked
          ? await tx.findOne(Contact, { id: contactId, account }, { populate: ['user'], refresh: true })
          : null;
        if (!contact)
          throw new DomainError('not_found', `The contact for ${request.email} no longer exists.`);
        if (contact.user) {
          return `${contact.name} had already been converted: they are user ${contact.user.getEntity().email}.`;
        }
        if (!contact.email)
          throw new DomainError('conflict', `${contact.name} no longer has an email address.`);
        // Edited since the check above: nothing is made; the next Approve closes the request saying why.
        const moved = movedFrom(contact, request);
        if (moved) throw new DomainError('conflict', moved);
        const existing = await findUserByEmail(tx, account, contact.email);
        if (existing) return `${contact.email} had already become a user (${statusLabel(existing.status)}).`;
        const permissionSet = request.permissionSet
          ? await tx.findOne(PermissionSet, { id: request.permissionSet.id, account })
          : null;
        const sendNow = Boolean(request.payload.sendNow);
        await this.createFrom(tx, account, contact, {
          role: request.role,
          permissionSet,
          sendNow,
          actorId: request.requestedBy,
          surface: 'slack',
        });
        return sendNow
          ? `${contact.name} is now a user and the invitation is on its way to ${contact.email}.`
          : `${contact.name} is now a user (${contact.email}, not invited yet).`;
      },
    };
  }

  /** Field errors for input a person typed, or the parsed values. */
  parse(
    raw: Record<string, unknown>,
  ): { ok: true; value: ContactInput } | { ok: false; errors: Record<string, string> } {
    const parsed = contactInput.safeParse(raw);
    if (parsed.success) return { ok: true, value: parsed.data };
    const errors: Record<string, string> = {};
    for (const issue of parsed.error.issues) errors[String(issue.path[0])] ??= issue.message;
    return { ok: false, errors };
  }

  /**
   * What is wrong with giving a contact this email, naming the record that holds it, or null.
   * `contactId` is the contact being edited: a converted contact keeps its user's email.
   */
  async emailConflict(
    em: EntityManager,
    account: IAccount,
    email: string | null,
    contactId?: string,
  ): Promise<string | null> {
    const self =
      contactId && isId(contactId)
        ? await em.findOne(Contact, { id: contactId, account }, { populate: ['user'] })
        : null;
    const linked = self?.user?.getEntity();
    if (linked) {
      if (normalizeEmail(email ?? '') === normalizeEmail(linked.email)) return null;
      return `${self!.name} was converted to the user ${linked.email}, so the email stays ${linked.email}.`;
    }
    if (!email) return null;
    const user = await findUserByEmail(em, account, email);
    if (user) return `${email} is already a user (${displayName(user)}, ${statusLabel(user.status)}).`;
    const contact = await findContactByEmail(em, account, email);
    if (contact && contact.id !== contactId) {
      return `${email} is already a contact: ${contact.name}${contact.company ? ` at ${contact.company}` : ''}.`;
    }
    return null;
  }

  /** Adds a contact; an email held by a user or another contact is refused (DomainError on `email`). */
  async add(em: EntityManager, account: IAccount, actor: Actor, input: ContactInput): Promise<IContact> {
    const conflict = await this.emailConflict(em, account, input.email);
    if (conflict) throw new DomainError('conflict', conflict, { field: 'email' });
    const contact = em.create(Contact, { account, ...input, addedBy: actor.slackUserId });
    audit(em, {
      account,
      actor: actor.slackUserId,
      action: 'contact.added',
      subjectType: 'contact',
      subjectId: contact.id,
      surface: actor.surface,
      data: { name: input.name, email: input.email },
    });
    await this.flushUnique(em, input.email);
    return contact;
  }

  /**
   * Saves changes to a contact with the same checks as adding; returns what changed. A field left empty
   * keeps a stored value too long for the form to have shown it (`keptOrNew`), and one in `untouched` keeps
   * what the contact holds now.
   */
  async edit(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    id: string,
    submitted: ContactInput,
    opts: { untouched?: ReadonlySet<string> } = {},
  ): Promise<{ contact: IContact; changed: string[] }> {
    // The contact's row is held while it is read and written: a conversion running at the same moment
    // (which holds it too) is waited for and seen, so a member never edits a contact that became a user.
    return em.transactional(async (tx) => {
      const [locked] = isId(id)
        ? await query<{ id: string }>(
            tx,
            sql`select id from contact where id = ${id} and account_id = ${account.id} for update`,
          )
        : [];
      const contact = locked ? await tx.findOne(Contact, { id, account }, { refresh: true }) : null;
      if (!contact) throw new DomainError('not_found', 'That contact no longer exists.');
      requireEditable(contact, actor);
      const kept = (field: 'phone' | 'company' | 'title' | 'notes') =>
        keptOrNew(contact[field], submitted[field], FIELD_MAX[field]);
      const input: ContactInput = {
        ...submitted,
        phone: kept('phone'),
        company: kept('company'),
        title: kept('title'),
        notes: kept('notes'),
      };
      // A field the form submitted as it showed it keeps what the contact holds now, which someone else may
      // have changed since the form opened.
      for (const field of CONTACT_FIELDS) {
        if (opts.untouched?.has(field)) Object.assign(input, { [field]: contact[field] ?? null });
      }
      const conflict = await this.emailConflict(tx, account, input.email, id);
      if (conflict) throw new DomainError('conflict', conflict, { field: 'email' });
      const changes: Record<string, { from: string | null; to: string | null }> = {};
      for (const field of CONTACT_FIELDS) {
        const from = contact[field] ?? null;
        const to = input[field] ?? null;
        if (from !== to) changes[field] = { from, to };
      }
      const changed = Object.keys(changes);
      if (changed.length === 0) return { contact, changed };
      Object.assign(contact, input);
      audit(tx, {
        account,
        actor: actor.slackUserId,
        action: 'contact.edited',
        subjectType: 'contact',
        subjectId: contact.id,
        surface: actor.surface,
        data: { changes },
      });
      await this.flushUnique(tx, input.email);
      return { contact, changed };
    });
  }

  /** Two people saving the same email at the same moment: the unique index decides, the loser is told. */
  private async flushUnique(em: EntityManager, email: string | null): Promise<void> {
    try {
      await em.flush();
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException) {
        em.clear();
        throw new DomainError('conflict', `${email} was just saved as another contact.`, { field: 'email' });
      }
      throw err;
    }
  }

  /** Contacts and users whose name, surname, email or company starts with `text` (see contact.search.ts). */
  find(
    em: EntityManager,
    account: IAccount,
    text: string,
    offset = 0,
  ): Promise<{ hits: SearchHit[]; more: boolean }> {
    return searchPeople(em, account, text, offset);
  }

  /** Why `actor` may not edit the contact `id` (converted, and they are no admin), or null; reads only. */
  async editProblem(em: EntityManager, account: IAccount, actor: Actor, id: string): Promise<string | null> {
    const contact = isId(id) ? await em.findOne(Contact, { id, account }) : null;
    if (!contact) return null;
    try {
      requireEditable(contact, actor);
      return null;
    } catch (err) {
      if (err instanceof DomainError) return err.message;
      throw err;
    }
  }

  /** The contact behind a Convert button, or a DomainError when it is gone or already a user. */
  async toConvert(em: EntityManager, account: IAccount, id: string): Promise<IContact> {
    const contact = isId(id) ? await em.findOne(Contact, { id, account }, { populate: ['user'] }) : null;
    return this.checkNotConverted(contact);
  }

  /**
   * Why this contact cannot be converted as asked, as field errors of the convert form, or null.
   * Checked before the form closes; `convert` checks again under a lock.
   */
  async convertProblems(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    contactId: string,
    input: ConvertInput,
  ): Promise<Record<string, string> | null> {
    try {
      const contact = await this.toConvert(em, account, contactId);
      await this.checkConvertible(em, account, contact, input);
      const set = await permissionSetToGrant(
        em,
        account,
        actor,
        input.permissionSetId,
        contact.email ?? contact.name,
      );
      await this.refuseAdminSetForGuest(
        em,
        account,
        actor,
        set,
        contact.email ?? input.email?.trim() ?? null,
        { askSlack: false },
      );
      if (!actor.isAdmin && isPaidRole(input.role)) {
        const email = contact.email ?? input.email?.trim() ?? '';
        const waiting = await em.findOne(SeatRequest, {
          account,
          status: 'pending',
          email: { $ilike: email.replace(/([%_\\])/g, '\\$1') },
        });
        if (waiting) return { role: `A seat request for ${email} is already waiting for an admin.` };
      }
      if (actor.isAdmin && isPaidRole(input.role)) {
        const usage = await this.seats.usage(em, account);
        if (usage.free === 0) {
          return {
            role: `No paid seat is free (${usage.used} of ${usage.limit} used). Raise the limit with \`/seats ${usage.limit + 1}\`, or choose Client.`,
          };
        }
      }
      return null;
    } catch (err) {
      if (err instanceof DomainError) return err.fields ?? { role: err.message };
      throw err;
    }
  }

  /**
   * Converts a contact into a user through the seat rules: a free role or an admin goes straight
   * through; a requester's paid role waits for approval. The contact stays, linked to the user.
   * A contact without an email takes `input.email` first.
   */
  async convert(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    contactId: string,
    input: ConvertInput,
  ): Promise<{ status: 'converted'; user: IUser } | { status: 'requested'; email: string }> {
    // A guest in Slack is never given an admin set: asked before the transaction, which never waits on Slack.
    if (input.permissionSetId && this.guests) {
      const shown = isId(contactId) ? await em.findOne(Contact, { id: contactId, account }) : null;
      const set = await permissionSetToGrant(em, account, actor, input.permissionSetId, shown?.email ?? '');
      await this.refuseAdminSetForGuest(em, account, actor, set, shown?.email ?? input.email?.trim() ?? null);
    }
    return retryDeadlocks(() => this.convertOnce(em, account, actor, contactId, input));
  }

  private convertOnce(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    contactId: string,
    input: ConvertInput,
  ): Promise<{ status: 'converted'; user: IUser } | { status: 'requested'; email: string }> {
    return em.transactional(async (tx) => {
      // The account's seats first, then the contact: the order an approval, an invitation and every other
      // seat change take them in, so a conversion never deadlocks with them. Two clicks on Convert (or two
      // people) queue here; the second sees the first one's user.
      await this.seats.lock(tx, account);
      const [locked] = isId(contactId)
        ? await query<{ id: string }>(
            tx,
            sql`select id from contact where id = ${contactId} and account_id = ${account.id} for update`,
          )
        : [];
      const contact = locked
        ? await tx.findOneOrFail(Contact, contactId, { populate: ['user'], refresh: true })
        : null;
      const email = await this.checkConvertible(tx, account, contact, input);
      const found = contact!;
      if (!found.email) {
        found.email = email;
        audit(tx, {
          account,
          actor: actor.slackUserId,
          action: 'contact.edited',
          subjectType: 'contact',
          subjectId: found.id,
          surface: actor.surface,
          data: { changes: { email: { from: null, to: email } }, reason: 'converting to a user' },
        });
        await this.flushUnique(tx, email);
      }
      const permissionSet = await permissionSetToGrant(tx, account, actor, input.permissionSetId, email);
      const result = await this.seats.admit(
        tx,
        account,
        actor,
        {
          kind: 'convert',
          email,
          name: found.name,
          role: input.role,
          permissionSet,
          requestedBy: actor.slackUserId,
          payload: { contactId, sendNow: input.sendNow },
        },
        () =>
          this.createFrom(tx, account, found, {
            role: input.role,
            permissionSet,
            sendNow: input.sendNow,
            actorId: actor.slackUserId,
            surface: actor.surface,
          }),
      );
      return result.status === 'added'
        ? { status: 'converted', user: result.value }
        : { status: 'requested', email };
    });
  }

  /** The email the converted user will have, or a DomainError saying why the contact cannot be converted. */
  private async checkConvertible(
    em: EntityManager,
    account: IAccount,
    found: IContact | null,
    input: ConvertInput,
  ): Promise<string> {
    const contact = this.checkNotConverted(found);
    if (input.shownEmail !== undefined) {
      const now = contact.email ?? null;
      const shown = input.shownEmail;
      if (normalizeEmail(now ?? '') !== normalizeEmail(shown ?? '')) {
        const again = 'Nothing was converted: close the form and press Convert to user again.';
        throw new DomainError(
          'conflict',
          now
            ? `${contact.name}'s email is now ${now}, not ${shown ? `the ${shown}` : 'none as'} this form showed. ${again}`
            : `${contact.name} no longer has an email, though this form showed ${shown}. ${again}`,
        );
      }
    }
    if (!(ROLES as readonly string[]).includes(input.role)) {
      throw new DomainError('invalid_input', 'Choose a role.', { field: 'role' });
    }
    let email = contact.email;
    if (!email) {
      const typed = contactInput.shape.email.safeParse(input.email);
      if (!typed.success) {
        throw new DomainError('invalid_input', typed.error.issues[0]!.message, { field: 'email' });
      }
      if (!typed.data) {
        throw new DomainError(
          'invalid_input',
          `${contact.name} has no email address yet: enter the one the invitation should go to.`,
          { field: 'email' },
        );
      }
      const conflict = await this.emailConflict(em, account, typed.data, contact.id);
      if (conflict) throw new DomainError('conflict', conflict, { field: 'email' });
      email = typed.data;
    }
    const existing = await findUserByEmail(em, account, email);
    if (existing) {
      throw new DomainError(
        'conflict',
        `${email} is already a user (${displayName(existing)}, ${statusLabel(existing.status)}), so there is nothing to convert.`,
      );
    }
    // The user would be invited now or later, and a requester's seat request could not be approved.
    await refuseOutsideDomains(em, account, email, contact.email ? undefined : 'email');
    return email;
  }

  private checkNotConverted(contact: IContact | null): IContact {
    if (!contact) throw new DomainError('not_found', 'That contact no longer exists.');
    if (contact.user) {
      const user = contact.user.getEntity();
      throw new DomainError(
        'conflict',
        `${contact.name} was already converted: they are the user ${user.email} (${statusLabel(user.status)}).`,
      );
    }
    return contact;
  }

  private async createFrom(
    tx: EntityManager,
    account: IAccount,
    contact: IContact,
    opts: {
      role: Role;
      permissionSet: IPermissionSet | null;
      sendNow: boolean;
      actorId: string;
      surface: Actor['surface'];
    },
  ): Promise<IUser> {
    const user = await createUser(tx, account, {
      email: contact.email!,
      role: opts.role,
      status: 'not_invited',
      permissionSet: opts.permissionSet,
      addedBy: opts.actorId,
    });
    audit(tx, {
      account,
      actor: opts.actorId,
      action: 'contact.converted',
      subjectType: 'contact',
      subjectId: contact.id,
      surface: opts.surface,
      data: { userId: user.id, email: contact.email, role: opts.role, sendNow: opts.sendNow },
    });
    if (opts.sendNow) {
      await queueInvitation(tx, this.jobs, {
        account,
        user,
        invitedBy: opts.actorId,
        surface: opts.surface,
      });
    }
    await tx.flush();
    return user;
  }
}

/**
 * A converted contact's details are its user's (the person card shows its company and notes), and only an
 * admin edits a user's details.
 */
export function requireEditable(contact: IContact, actor: Pick<Actor, 'isAdmin'>): void {
  if (contact.user && !actor.isAdmin)
    throw new DomainError(
      'not_admin',
      `${contact.name} is a user now, so only an admin can change their details (from their card: \`/people\`). Nothing was changed.`,
    );
}
