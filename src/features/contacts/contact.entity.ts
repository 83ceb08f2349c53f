import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { baseProperties, changeProperties } from '../../db/base.ts';
import { Account } from '../accounts/account.entity.ts';
import { User } from '../people/user.entity.ts';

/** Someone the account works with who has no login; may later be converted into a user. */
export const Contact = defineEntity({
  name: 'Contact',
  tableName: 'contact',
  properties: {
    ...baseProperties,
    ...changeProperties,
    account: () => p.manyToOne(Account).ref(),
    name: p.string(),
    email: p.string().nullable(),
    phone: p.string().nullable(),
    company: p.string().nullable(),
    title: p.string().nullable(),
    notes: p.text().nullable(),
    user: () => p.manyToOne(User).ref().nullable(),
    addedBy: p.string().nullable(),
  },
});
export type IContact = InferEntity<typeof Contact>;
