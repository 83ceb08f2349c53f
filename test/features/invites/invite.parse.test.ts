import {
  invalidMessage,
  parseAddresses,
  parseEmails,
  parseInviteText,
} from '../../../src/features/invites/invite-text.ts';

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
      mentions: [],
    });
    expect(parseInviteText('client cy@z.net')).toEqual({
      emailsText: 'cy@z.net',
      role: 'client',
      mentions: [],
    });
  });

  it('leaves the role unset when none is named', () => {
    expect(parseInviteText('ana@x.com')).toEqual({ emailsText: 'ana@x.com', role: undefined, mentions: [] });
  });
});

describe('addresses as people paste them', () => {
  it('takes a name with its address, as Gmail and Outlook copy them, separated by commas or semicolons', () => {
    expect(
      parseAddresses('Ana Lopez <ana@example.com>, "Lopez, Ana" <ana2@x.com>; bo@y.org;Cy <cy@z.net>'),
    ).toEqual({
      addresses: [
        { email: 'ana@example.com', firstName: 'Ana', lastName: 'Lopez' },
        { email: 'ana2@x.com', firstName: 'Ana', lastName: 'Lopez' },
        { email: 'bo@y.org' },
        { email: 'cy@z.net', firstName: 'Cy' },
      ],
      invalid: [],
      duplicates: [],
    });
  });

  it('takes a quoted name with quotes and an address in it, and a name-less <address>', () => {
    expect(
      parseAddresses('"Ana \\"AJ\\" Lopez" <ana@x.com> <bo@y.org> "bo@y.org" <BO@y.org>').addresses,
    ).toEqual([{ email: 'ana@x.com', firstName: 'Ana', lastName: '"AJ" Lopez' }, { email: 'bo@y.org' }]);
  });

  it('reads the text Slack sends: addresses made links, brackets escaped', () => {
    const sent = 'Ana Lopez &lt;<mailto:ana@example.com|ana@example.com>&gt;, <mailto:bo@y.org|bo@y.org>';
    expect(parseAddresses(sent).addresses).toEqual([
      { email: 'ana@example.com', firstName: 'Ana', lastName: 'Lopez' },
      { email: 'bo@y.org' },
    ]);
  });

  it('undoes the rest of what Slack escapes: links, channels, @here, groups and the &amp; of a typed &', () => {
    // Typed: <https://x.test/a?b=1&c=2> Ana & Bo <ab@x.test>, #general @here @devs example.org
    const sent =
      '&lt;<https://x.test/a?b=1&amp;c=2>&gt; Ana &amp; Bo &lt;<mailto:ab@x.test|ab@x.test>&gt;, <#C0GENERAL|general> <!here> <!subteam^S0DEVS|@devs> <http://example.org|example.org>';
    const { addresses, invalid } = parseAddresses(sent);
    expect(addresses).toEqual([{ email: 'ab@x.test', firstName: 'Ana', lastName: '& Bo' }]);
    expect(invalid).toEqual(['https://x.test/a?b=1&c=2', '#general', '@here', '@devs', 'example.org']);
    // A private channel Slack sends without its name is named by its id; nothing is left in Slack's markup.
    expect(parseAddresses('<#G0SECRET|> <https://x.test>').invalid).toEqual(['#G0SECRET', 'https://x.test']);
  });

  it('reads an escaped literal entity as the text that was typed', () => {
    // Typed: "A &lt; B" <ab@x.test>: Slack escapes the & of the typed entity, which stays as typed.
    expect(parseAddresses('"A &amp;lt; B" &lt;<mailto:ab@x.test|ab@x.test>&gt;').addresses).toEqual([
      { email: 'ab@x.test', firstName: 'A', lastName: '&lt; B' },
    ]);
  });

  it('still refuses junk, naming it and saying how a name goes with an address', () => {
    const { addresses, invalid } = parseAddresses('Ana Lopez ana@x.com, Bo <not-an-address>, <ana@x.com');
    expect(addresses).toEqual([{ email: 'ana@x.com' }]);
    expect(invalid).toEqual(['Ana', 'Lopez', 'not-an-address', '<ana@x.com']);
    expect(invalidMessage(invalid)).toBe(
      'Not valid email addresses: Ana, Lopez, not-an-address, <ana@x.com. Fix or remove them; a name goes with its address as Ana Lopez <ana@example.com>.',
    );
  });

  it('refuses addresses outside ASCII as the CSV import and the forms do, saying how to write the domain', () => {
    const { addresses, invalid } = parseAddresses('josé@exämple.com ana@exämple.com');
    expect(addresses).toEqual([]);
    expect(invalidMessage(invalid)).toContain(
      'josé@exämple.com (Roster takes addresses in plain ASCII, without accents or other scripts; ask for another address)',
    );
    expect(invalidMessage(invalid)).toContain(
      'ana@exämple.com (Roster takes addresses in plain ASCII: write it ana@xn--exmple-cua.com)',
    );
  });

  it('takes the ASCII form of a top-level domain in another script, and says how to write one typed in it', () => {
    const { addresses, invalid } = parseAddresses('ivan@xn--e1afmkfd.xn--p1ai oleg@пример.рф');
    expect(addresses).toEqual([{ email: 'ivan@xn--e1afmkfd.xn--p1ai' }]);
    expect(invalidMessage(invalid)).toContain(
      'oleg@пример.рф (Roster takes addresses in plain ASCII: write it oleg@xn--e1afmkfd.xn--p1ai)',
    );
  });

  it('says an address ended with a full stop, as at the end of a sentence, and how to write it', () => {
    const { addresses, invalid } = parseAddresses(
      'Please invite ana@example.com. Thanks, "Bo" <bo@example.org.>',
    );
    expect(addresses).toEqual([]);
    expect(invalidMessage(invalid)).toContain(
      'ana@example.com. (the final dot is not part of an address: write ana@example.com)',
    );
    expect(invalidMessage(invalid)).toContain(
      'bo@example.org. (the final dot is not part of an address: write bo@example.org)',
    );
  });

  it('says a Slack name or mention is not an address', () => {
    const { invalid } = parseAddresses('@ana <@U123|bo>');
    expect(invalidMessage(invalid)).toContain(
      '@ana (a Slack name, not an address: type their email), @bo (a Slack name',
    );
  });
});

describe('parseInviteText with names and mentions', () => {
  it('keeps each name with its address, takes the role only as a word of its own, and returns mentions', () => {
    expect(
      parseInviteText('"Client, Ana" <ana@x.com>, Bo Contractor <bo@y.org> <@U0BO|bo> <@W0CY> client'),
    ).toEqual({
      emailsText: '"Client, Ana" <ana@x.com>\nBo Contractor <bo@y.org>',
      role: 'client',
      mentions: [
        { slackUserId: 'U0BO', raw: '<@U0BO|bo>', label: 'bo' },
        { slackUserId: 'W0CY', raw: '<@W0CY>', label: null },
      ],
    });
  });
});
