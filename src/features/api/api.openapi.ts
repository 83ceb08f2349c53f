import { z } from 'zod';
import { PROBLEM_TYPE } from '../../web/problem.ts';
import { ROLES, USER_STATUSES } from '../people/user.entity.ts';
import { DEFAULT_LIMIT, MAX_LIMIT } from './api.params.ts';
import { apiSchemas, CONTACT_STATUSES } from './api.schemas.ts';

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });
const json = (id: string, description: string) => ({
  description,
  content: { 'application/json': { schema: ref(id) } },
});
const problem = (description: string, headers?: Record<string, unknown>) => ({
  description,
  content: { [PROBLEM_TYPE]: { schema: ref('Problem') } },
  ...(headers ? { headers } : {}),
});

const errors = {
  '400': problem('A query parameter or the cursor cannot be used; `errors` names each one and why.'),
  '401': problem('No working API token: missing, unknown or revoked tokens get the same answer.', {
    'WWW-Authenticate': { schema: { type: 'string' } },
  }),
  '429': problem(
    'Over the token’s rate limit, or too many requests with a missing or unknown token from this address; try again after Retry-After seconds.',
    {
      'Retry-After': { description: 'Seconds to wait.', schema: { type: 'integer', minimum: 1 } },
    },
  ),
};

const query = (name: string, description: string, schema: Record<string, unknown>) => ({
  name,
  in: 'query',
  required: false,
  description,
  schema,
});

const commaList = (values: readonly string[]) => ({
  type: 'string',
  pattern: `^(${values.join('|')})(,(${values.join('|')}))*$`,
});

const paging = [
  query('limit', `Rows per page, 1 to ${MAX_LIMIT}; ${DEFAULT_LIMIT} when left out.`, {
    type: 'integer',
    minimum: 1,
    maximum: MAX_LIMIT,
    default: DEFAULT_LIMIT,
  }),
  query(
    'cursor',
    'next_cursor of the previous page. The cursor remembers the filters: repeat them or leave them out. It works only with the tokens of the account it was issued to.',
    { type: 'string' },
  ),
];
const updatedSince = query(
  'updated_since',
  'Only rows changed at or after this time (ISO 8601 with a time zone, or a date taken as UTC).',
  { type: 'string' },
);

const listDescription =
  'Rows come in the order they last changed (then by id), and only once every change committed before them is visible. A row changed while you page moves to the end of the list and comes again, with its new values; none is skipped. Upsert by id. When has_more is false, keep next_cursor and ask with it later to get only what changed since.';

/** The OpenAPI 3.1 document of the read API, its schemas generated from the ones the routes answer with. */
export function openApiDocument(publicUrl: string): Record<string, unknown> {
  const generated = z.toJSONSchema(apiSchemas, {
    target: 'draft-2020-12',
    uri: (id) => `#/components/schemas/${id}`,
  }).schemas as Record<string, Record<string, unknown>>;
  const schemas = Object.fromEntries(
    Object.entries(generated).map(([id, { $schema: _s, $id: _i, ...schema }]) => [id, schema]),
  );
  return {
    openapi: '3.1.0',
    info: {
      title: 'Roster read API',
      version: '1.0.0',
      description:
        'People, contacts and the audit trail of one Roster account, read with an API token an admin creates in Slack (App Home → API tokens). Every answer is scoped to the token’s account.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [{ url: publicUrl }],
    security: [{ bearer: [] }],
    paths: {
      '/api/v1/people': {
        get: {
          operationId: 'listPeople',
          summary: 'List people',
          description: listDescription,
          parameters: [
            query('status', 'One or more statuses, comma-separated.', commaList(USER_STATUSES)),
            query('role', 'One or more roles, comma-separated.', commaList(ROLES)),
            updatedSince,
            ...paging,
          ],
          responses: { '200': json('PersonPage', 'A page of people.'), ...errors },
        },
      },
      '/api/v1/people/{id}': {
        get: {
          operationId: 'getPerson',
          summary: 'One person',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': json('Person', 'The person as they are now.'),
            '404': problem('No person with this id in the token’s account.'),
            '400': problem('A query parameter was given: this path takes none; `errors` names each one.'),
            '401': errors['401'],
            '429': errors['429'],
          },
        },
      },
      '/api/v1/contacts': {
        get: {
          operationId: 'listContacts',
          summary: 'List contacts',
          description: listDescription,
          parameters: [
            query('status', 'contact, converted (became a person), or both.', commaList(CONTACT_STATUSES)),
            updatedSince,
            ...paging,
          ],
          responses: { '200': json('ContactPage', 'A page of contacts.'), ...errors },
        },
      },
      '/api/v1/audit-events': {
        get: {
          operationId: 'listAuditEvents',
          summary: 'List audit events',
          description: `${listDescription} Events are never changed, so each comes once.`,
          parameters: [
            query(
              'since',
              'An audit event id (the events after it) or an ISO 8601 time (the events recorded at or after it).',
              { type: 'string' },
            ),
            ...paging,
          ],
          responses: { '200': json('AuditEventPage', 'A page of audit events.'), ...errors },
        },
      },
      '/api/v1/openapi.json': {
        get: {
          operationId: 'openApi',
          summary: 'This document',
          security: [],
          responses: {
            '200': {
              description: 'The OpenAPI document.',
              content: { 'application/json': { schema: { type: 'object' } } },
            },
          },
        },
      },
    },
    components: {
      schemas,
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'An API token, roster_ followed by 43 characters.',
        },
      },
    },
  };
}
