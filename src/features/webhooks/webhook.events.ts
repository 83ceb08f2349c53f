/** Every event Roster sends, with the words an admin picks them by. The audit actions behind each are
 * mapped in the database (migrations/Migration20261201010000_webhooks.ts, `webhook_events`). */
export const WEBHOOK_EVENTS = {
  'person.created': 'A person was added (invite, join link, CSV import, conversion)',
  'person.updated': 'A person’s details, email, permission set or lock changed',
  'person.invited': 'An invitation was sent or sent again',
  'person.activated': 'A person accepted their invitation',
  'person.deactivated': 'A person was deactivated',
  'person.reactivated': 'A person was reactivated',
  'person.role_changed': 'A person’s role changed',
  'seat_limit.changed': 'The number of paid seats changed',
  'seat_request.decided': 'A seat request was approved, rejected or expired',
  'contact.created': 'A contact was added',
  'contact.updated': 'A contact’s details changed',
  'contact.converted': 'A contact became a user',
  'import.completed': 'A CSV import finished',
} as const;

export type WebhookEventType = keyof typeof WEBHOOK_EVENTS;
export const WEBHOOK_EVENT_TYPES = Object.keys(WEBHOOK_EVENTS) as WebhookEventType[];

/** The event **Send test event** sends; it goes to the endpoint whatever events it takes. */
export const TEST_EVENT = 'webhook.test';

export function isWebhookEventType(value: string): value is WebhookEventType {
  return Object.hasOwn(WEBHOOK_EVENTS, value);
}
