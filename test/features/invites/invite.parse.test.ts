import { parseEmails, parseInviteText } from '../../../src/features/invites/invite-text.ts';

describe('parseEmails', () => {
  it('splits on commas, semicolons, spaces and new lines', () => {
    expect(parseEmails('a@x.test, b@x.test;c@x.test\nd@x.test   e@x.test').emails).toEqual([
      'a@x.test',
      'b@x.test',
      'c@x.test',
      'd@x.test',
      'e@x.test',
    ]);
  });

  it('unwraps the mailto links Slack makes of typed addresses', () => {
    expect(parseEmails('<mailto:ana@x.test|ana@x.test>').emails).toEqual(['ana@x.test']);
  });

  it('keeps the first of addresses that differ only in case, and names the rest as duplicates', () => {
    expect(parseEmails('Ana@X.test ana@x.test  ANA@x.TEST')).toEqual({
      emails: ['Ana@X.test'],
      invalid: [],
      duplicates: ['ana@x.test', 'ANA@x.TEST'],
    });
  });

  it('names every value that is not an address', () => {
    expect(parseEmails('ok@x.test nope @x.test a@b').invalid).toEqual(['nope', '@x.test', 'a@b']);
  });

  it('finds nothing in blank text', () => {
    expect(parseEmails(' \n ,; ')).toEqual({ emails: [], invalid: [], duplicates: [] });
  });
});

describe('parseInviteText', () => {
  it('takes a role word anywhere, in any case, and leaves the addresses one per line', () => {
    expect(parseInviteText('ana@x.com, bo@y.org Contractor')).toEqual({
      emailsText: 'ana@x.com\nbo@y.org',
      role: 'contractor',
    });
    expect(parseInviteText('client cy@z.net')).toEqual({ emailsText: 'cy@z.net', role: 'client' });
  });

  it('leaves the role unset when none is named', () => {
    expect(parseInviteText('ana@x.com')).toEqual({ emailsText: 'ana@x.com', role: undefined });
  });
});
