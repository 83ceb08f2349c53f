import { type IUser, type Role, User, type UserStatus } from '../../../src/features/people/user.entity.ts';
import { eventually, type TestApp } from '../../support/app.ts';

/**
 * Makes people in the account of the test app `app` returns (started after the tests load), each with an address and last name of their own:
 * `${name.toLowerCase()}${n}@${domain}`, `${first} ${name}${n}`.
 */
export function personMaker(app: () => TestApp, names: { first: string; last: string; domain: string }) {
  let n = 0;
  return async (status: UserStatus, role: Role = 'employee', extra: Partial<IUser> = {}) => {
    const em = app().em();
    const user = em.create(User, {
      account: await app().account(),
      email: `${names.last.toLowerCase()}${++n}@${names.domain}`,
      firstName: names.first,
      lastName: `${names.last}${n}`,
      role,
      status,
      addedBy: 'UADMIN',
      ...extra,
    });
    await em.flush();
    return user;
  };
}

/** `/people TEXT` as `user`: the ephemeral card Roster answered with. */
export async function openCard(t: TestApp, user: string, text: string) {
  const before = t.standin.responses.length;
  await t.slack.command('/people', text, { user });
  return eventually(() => t.standin.responses.slice(before).at(-1));
}
