import type { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { DomainError } from '../../shared/errors.ts';
import type { JobQueue } from '../../shared/jobs.ts';
import { type IAccount, type IPermissionSet, PermissionSet } from '../accounts/account.entity.ts';
import { audit } from '../audit/audit.service.ts';
import { queueInvitation } from '../invites/invitation.service.ts';
import { statusText } from '../invites/invite.service.ts';
import { createUser, findContactByEmail, findUserByEmail } from '../people/people.service.ts';
import { displayName, type IUser, type Role, type UserStatus } from '../people/user.entity.ts';
import type { Actor, SeatService } from '../seats/seat.service.ts';
import { Contact, type IContact } from './contact.entity.ts';

const optional = (max: number) =>
  z
    .string()
    .trim()
    .max(max, `Keep it under ${max} characters.`)
    .optional()
    .nullable()
    .transform((v) => v || null);

export const contactInput = z.object({
  name: z.string().trim().min(1, 'Enter a name.').max(200, 'Keep it under 200 characters.'),
  email: z
    .string()
    .trim()
    .optional()
    .nullable()
    .transform((v) => v || null)
    .refine(
      (v) => v === null || z.email().safeParse(v).success,
      'Enter a valid email address, or leave it empty.',
    ),
  phone: optional(50),
  company: optional(200),
  title: optional(200),
  notes: optional(2000),
});
export type ContactInput = z.infer<typeof contactInput>;

export type SearchHit =
  | {
      kind: 'contact';
      id: string;
      name: string;
      email: string | null;
      company: string | null;
      convertedTo: string | null;
    }
  | { kind: 'user'; id: string; name: string; email: string; company: null; status: UserStatus; role: Role };

export const PAGE_SIZE = 10;

/** Contacts: people without a login, found alongside users and converted into users through the seat rules. */
export class ContactService {
  private readonly seats: SeatService;
  private readonly jobs: JobQueue;

  constructor(seats: SeatService, jobs: JobQueue) {
    this.seats = seats;
    this.jobs = jobs;
    seats.register('convert', {
      approve: async (tx, request, account) => {
        const contact = await tx.findOneOrFail(Contact, { id: request.payload.contactId as string, account });
        if (contact.user) return `${request.email} had already been converted.`;
        const permissionSet = request.permissionSet
          ? await tx.findOne(PermissionSet, request.permissionSet.id)
          : null;
        await this.createFrom(
          tx,
          account,
          contact,
          request.role,
          permissionSet,
          Boolean(request.payload.sendNow),
          request.requestedBy,
        );
        return request.payload.sendNow
          ? `The invitation is on its way to ${request.email}.`
          : `${request.email} is now a user (not invited yet).`;
      },
    });
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

  /** An email must not already belong to a user or to another contact; the error names that record. */
  async emailConflict(em: EntityManager, account: IAccount, email: string | null, exceptContactId?: string) {
    if (!email) return null;
    const user = await findUserByEmail(em, account, email);
    if (user) return `${email} is already a user: ${displayName(user)}, ${statusText(user.status)}.`;
    const contact = await findContactByEmail(em, account, email);
    if (contact && contact.id !== exceptContactId) {
      return `${email} is already a contact: ${contact.name}${contact.company ? ` at ${contact.company}` : ''}.`;
    }
    return null;
  }

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
    await em.flush();
    return contact;
  }

  async edit(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    id: string,
    input: ContactInput,
  ): Promise<IContact> {
    const contact = await em.findOne(Contact, { id, account });
    if (!contact) throw new DomainError('not_found', 'That contact no longer exists.');
    const conflict = await this.emailConflict(em, account, input.email, id);
    if (conflict) throw new DomainError('conflict', conflict, { field: 'email' });
    const before = {
      name: contact.name,
      email: contact.email,
      phone: contact.phone,
      company: contact.company,
      title: contact.title,
    };
    Object.assign(contact, input);
    audit(em, {
      account,
      actor: actor.slackUserId,
      action: 'contact.edited',
      subjectType: 'contact',
      subjectId: contact.id,
      surface: actor.surface,
      data: { before, after: input },
    });
    await em.flush();
    return contact;
  }

  /** Contacts and users whose name, email or company starts with `text`, case-insensitively. */
  async find(
    em: EntityManager,
    account: IAccount,
    text: string,
    offset = 0,
  ): Promise<{ hits: SearchHit[]; more: boolean }> {
    const prefix = `${text
      .trim()
      .toLowerCase()
      .replace(/([%_\\])/g, '\\$1')}%`;
    const rows = await em.getConnection().execute<Record<string, any>[]>(
      `select * from (
         select 'contact' as kind, c.id, c.name, c.email, c.company, c.user_id as converted_to, null as status, null as role
         from contact c
         where c.account_id = ? and (lower(c.name) like ? or lower(c.email) like ? or lower(c.company) like ?)
         union all
         select 'user', u.id, btrim(coalesce(u.first_name, '') || ' ' || coalesce(u.last_name, '')), u.email, null, null, u.status, u.role
         from app_user u
         where u.account_id = ? and (lower(u.email) like ?
           or lower(btrim(coalesce(u.first_name, '') || ' ' || coalesce(u.last_name, ''))) like ?
           or lower(u.last_name) like ?)
       ) hits
       order by lower(coalesce(nullif(name, ''), email)), kind, id
       limit ? offset ?`,
      [account.id, prefix, prefix, prefix, account.id, prefix, prefix, prefix, PAGE_SIZE + 1, offset],
    );
    const hits = rows.slice(0, PAGE_SIZE).map(
      (r): SearchHit =>
        r.kind === 'contact'
          ? {
              kind: 'contact',
              id: r.id,
              name: r.name,
              email: r.email,
              company: r.company,
              convertedTo: r.converted_to,
            }
          : {
              kind: 'user',
              id: r.id,
              name: r.name || r.email,
              email: r.email,
              company: null,
              status: r.status,
              role: r.role,
            },
    );
    return { hits, more: rows.length > PAGE_SIZE };
  }

  /**
   * Converts a contact into a user through the seat rules: a free role or an admin goes straight
   * through; a requester's paid role waits for approval. The contact stays, linked to the user.
   */
  async convert(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    contactId: string,
    input: { role: Role; permissionSetId?: string | null; sendNow: boolean },
  ): Promise<{ status: 'converted'; user: IUser } | { status: 'requested'; email: string }> {
    return em.transactional(async (tx) => {
      const [locked] = await tx
        .getConnection()
        .execute<{ id: string }[]>(
          'select id from contact where id = ? and account_id = ? for update',
          [contactId, account.id],
          'all',
          tx.getTransactionContext(),
        );
      if (!locked) throw new DomainError('not_found', 'That contact no longer exists.');
      const contact = await tx.findOneOrFail(Contact, contactId, { populate: ['user'], refresh: true });
      if (contact.user) {
        const user = contact.user.getEntity();
        throw new DomainError(
          'conflict',
          `${contact.name} was already converted: they are user ${user.email}, ${statusText(user.status)}.`,
        );
      }
      if (!contact.email) {
        throw new DomainError(
          'invalid_input',
          `${contact.name} has no email address. Edit the contact to add one, then convert it.`,
        );
      }
      const existing = await findUserByEmail(tx, account, contact.email);
      if (existing) {
        throw new DomainError(
          'conflict',
          `${contact.email} is already a user (${statusText(existing.status)}).`,
        );
      }
      const permissionSet = input.permissionSetId
        ? await tx.findOne(PermissionSet, { id: input.permissionSetId, account })
        : null;
      const result = await this.seats.admit(
        tx,
        account,
        actor,
        {
          kind: 'convert',
          email: contact.email,
          name: contact.name,
          role: input.role,
          permissionSet,
          requestedBy: actor.slackUserId,
          payload: { contactId, sendNow: input.sendNow },
        },
        () =>
          this.createFrom(tx, account, contact, input.role, permissionSet, input.sendNow, actor.slackUserId),
      );
      return result.status === 'added'
        ? { status: 'converted', user: result.value }
        : { status: 'requested', email: contact.email };
    });
  }

  private async createFrom(
    tx: EntityManager,
    account: IAccount,
    contact: IContact,
    role: Role,
    permissionSet: IPermissionSet | null,
    sendNow: boolean,
    actorId: string,
  ): Promise<IUser> {
    const user = await createUser(tx, account, {
      email: contact.email!,
      role,
      status: 'not_invited',
      permissionSet,
      addedBy: actorId,
    });
    audit(tx, {
      account,
      actor: actorId,
      action: 'contact.converted',
      subjectType: 'contact',
      subjectId: contact.id,
      surface: 'slack',
      data: { userId: user.id, email: contact.email, role, sendNow },
    });
    if (sendNow)
      await queueInvitation(tx, this.jobs, { account, user, invitedBy: actorId, surface: 'slack' });
    await tx.flush();
    return user;
  }
}
