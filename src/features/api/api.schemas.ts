import { z } from 'zod';
import { SURFACES } from '../audit/audit-event.entity.ts';
import { ROLES, USER_STATUSES } from '../people/user.entity.ts';

/**
 * The API's answers, described once: the routes build them, and the OpenAPI document is generated from
 * them (z.toJSONSchema), so the document cannot drift from what is sent.
 */
export const apiSchemas = z.registry<{ id: string; description?: string }>();

const time = z.iso.datetime({ offset: true });
const nullableText = z.string().nullable();

export const CONTACT_STATUSES = ['contact', 'converted'] as const;
export type ContactStatus = (typeof CONTACT_STATUSES)[number];

export const Person = z
  .object({
    id: z.uuid(),
    email: nullableText.describe('The login email; null while the person was imported without one.'),
    first_name: nullableText,
    last_name: nullableText,
    title: nullableText,
    phone: nullableText,
    role: z.enum(ROLES),
    status: z.enum(USER_STATUSES),
    permission_set: nullableText.describe('The name of the permission set, e.g. Admin or Member.'),
    slack_user_id: nullableText,
    login_missing: z.boolean(),
    deactivated_at: time.nullable(),
    created_at: time,
    updated_at: time,
  })
  .register(apiSchemas, { id: 'Person', description: 'A person with a login, or about to have one.' });
export type PersonOut = z.infer<typeof Person>;

export const Contact = z
  .object({
    id: z.uuid(),
    name: z.string(),
    email: nullableText,
    phone: nullableText,
    company: nullableText,
    title: nullableText,
    notes: nullableText,
    status: z.enum(CONTACT_STATUSES).describe('converted: the contact has become a person (person_id).'),
    person_id: z.uuid().nullable(),
    created_at: time,
    updated_at: time,
  })
  .register(apiSchemas, { id: 'Contact', description: 'Someone the account works with who has no login.' });
export type ContactOut = z.infer<typeof Contact>;

export const AuditEvent = z
  .object({
    id: z.int().min(1),
    action: z.string().describe('What happened, e.g. user.added, user.deactivated, seat_limit.changed.'),
    actor: z.string().describe('The Slack user id who did it, or system, deployment, an email address.'),
    subject_type: z.string(),
    subject_id: nullableText,
    surface: z.enum(SURFACES),
    data: z.record(z.string(), z.unknown()),
    created_at: time,
  })
  .register(apiSchemas, { id: 'AuditEvent', description: 'One change, as Roster recorded it.' });
export type AuditEventOut = z.infer<typeof AuditEvent>;

const page = <T extends z.ZodType>(item: T, id: string, what: string) =>
  z
    .object({
      data: z.array(item),
      has_more: z.boolean().describe('True when more rows follow now: ask again at once with next_cursor.'),
      next_cursor: z
        .string()
        .describe(
          'Pass as cursor for the rows after this page. When has_more is false, keep it: asking with it later returns only what changed since.',
        ),
    })
    .register(apiSchemas, { id, description: `A page of ${what}.` });

export const PersonPage = page(Person, 'PersonPage', 'people');
export const ContactPage = page(Contact, 'ContactPage', 'contacts');
export const AuditEventPage = page(AuditEvent, 'AuditEventPage', 'audit events');

/** RFC 9457 problem details, sent as application/problem+json with every error. */
export const Problem = z
  .object({
    type: z.string().describe('A URI naming the kind of problem; about:blank when the status says it all.'),
    title: z.string(),
    status: z.int(),
    detail: z.string().describe('What went wrong with this request, and how to put it right.'),
    errors: z
      .array(z.object({ parameter: z.string(), detail: z.string() }))
      .optional()
      .describe('Each query parameter that could not be used, and why.'),
  })
  .register(apiSchemas, { id: 'Problem', description: 'An error, as RFC 9457 describes.' });
export type ProblemOut = z.infer<typeof Problem>;
