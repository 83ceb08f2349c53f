import { loginEmail, NO_LOGIN_EMAIL } from '../../../src/features/people/labels.ts';
import { isPlaceholderLogin } from '../../../src/features/people/user.entity.ts';

describe('a login email as a person reads it', () => {
  it('reads "no login email yet" for the placeholder of a user imported without one, whatever its case', () => {
    expect(loginEmail('missing-0123456789abcdef0123@login.invalid')).toBe(NO_LOGIN_EMAIL);
    expect(loginEmail('MISSING-0123456789ABCDEF0123@LOGIN.INVALID')).toBe('no login email yet');
  });

  it('leaves every real address as it is, including look-alikes on other domains', () => {
    expect(loginEmail('ana@acme.test')).toBe('ana@acme.test');
    expect(loginEmail('missing-person@acme.test')).toBe('missing-person@acme.test');
    expect(loginEmail('ana@login.invalid.example.com')).toBe('ana@login.invalid.example.com');
    expect(isPlaceholderLogin(null)).toBe(false);
  });
});
