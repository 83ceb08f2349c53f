import type { Browser, Page } from 'playwright-core';
import { openForm, postLink } from '../features/join-links/support.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { launchBrowser } from '../support/browser.ts';
import { links } from '../support/smtp-sink.ts';

// People open invitations and join links on phones, many of them set to dark mode: every text on the pages
// must stay readable there as in light mode (WCAG AA: 4.5:1 for text, 3:1 for large text).

let t: TestApp;
let browser: Browser;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 20 });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser.close();
  await t.stop();
});

/** Relative luminance of a CSS `rgb(r, g, b)` colour. */
function luminance(color: string): number {
  const [r, g, b] = (color.match(/[\d.]+/g) ?? []).slice(0, 3).map((v) => {
    const c = Number(v) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}

function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

/**
 * Each text of the page that has its own colour, with the colour it is read against: a button's own
 * background, anything else the card's. Evaluated in the page (a string: the project's types have no DOM).
 */
async function colours(page: Page) {
  return (await page.evaluate(`(() => {
    const card = getComputedStyle(document.querySelector('main')).backgroundColor;
    const out = [];
    for (const sel of ['h1', 'p', 'p.muted', 'p.error', 'h1.ok', 'dt', 'dd', 'label', 'button']) {
      for (const el of document.querySelectorAll(sel)) {
        const style = getComputedStyle(el);
        out.push({
          sel,
          text: el.textContent.trim().slice(0, 40),
          fg: style.color,
          bg: sel === 'button' ? style.backgroundColor : card,
          large: parseFloat(style.fontSize) >= 18.66 && Number(style.fontWeight) >= 700,
        });
      }
    }
    return out;
  })()`)) as { sel: string; text: string; fg: string; bg: string; large: boolean }[];
}

/** What falls short of WCAG AA on the page as it is shown now. */
async function unreadable(page: Page) {
  return (await colours(page))
    .map((c) => ({ ...c, ratio: Math.round(contrast(c.fg, c.bg) * 100) / 100 }))
    .filter((c) => c.ratio < (c.large ? 3 : 4.5));
}

async function invitationLink(email: string): Promise<string> {
  await t.slack.command('/invite', '', { user: 'UADMIN' });
  await t.slack.submitView(t.standin.lastOpenedView(), { emails: email }, { user: 'UADMIN' });
  const mail = await t.smtp.waitForMail((m) => m.toText === email);
  return links(mail).find((l) => l.includes('/invitations/'))!;
}

for (const colorScheme of ['light', 'dark'] as const) {
  describe(`the web pages in ${colorScheme} mode`, () => {
    it('keep the invitation, its Accept button and the welcome readable', async () => {
      const link = await invitationLink(`${colorScheme}-mode@example.com`);
      const ctx = await browser.newContext({
        colorScheme,
        viewport: { width: 360, height: 740 },
        isMobile: true,
        hasTouch: true,
      });
      try {
        const page = await ctx.newPage();
        await page.goto(link);
        expect(await unreadable(page)).toEqual([]);
        await page.click('button:has-text("Accept invitation")');
        await page.waitForSelector('h1.ok');
        expect(await unreadable(page)).toEqual([]);
      } finally {
        await ctx.close();
      }
    });

    it("outline the join form's fields enough to be found (3:1 against the card, WCAG 1.4.11)", async () => {
      const { url } = await postLink(t);
      const ctx = await browser.newContext({ colorScheme, viewport: { width: 360, height: 740 } });
      try {
        const page = await ctx.newPage();
        await page.goto(url);
        const fields = (await page.evaluate(`(() => {
          const card = getComputedStyle(document.querySelector('main')).backgroundColor;
          return [...document.querySelectorAll('input:not([type=hidden])')].map((el) => ({
            id: el.id, border: getComputedStyle(el).borderTopColor, card,
          }));
        })()`)) as { id: string; border: string; card: string }[];
        expect(fields.map((f) => f.id)).toEqual(['name', 'email']);
        const faint = fields
          .map((f) => ({ ...f, ratio: Math.round(contrast(f.border, f.card) * 100) / 100 }))
          .filter((f) => f.ratio < 3);
        expect(faint).toEqual([]);
      } finally {
        await ctx.close();
      }
    });

    it('keep the join form, its errors and the Confirm page readable', async () => {
      const { url } = await postLink(t);
      const ctx = await browser.newContext({
        colorScheme,
        viewport: { width: 360, height: 740 },
        isMobile: true,
        hasTouch: true,
      });
      try {
        const page = await ctx.newPage();
        await page.goto(url);
        expect(await unreadable(page)).toEqual([]);
        await page.fill('#name', 'Dana Dark');
        await page.fill('#email', 'not an address');
        await page.click('button:has-text("Send me the link")');
        await page.waitForSelector('.error');
        expect(await unreadable(page)).toEqual([]);

        const email = `${colorScheme}-join@outside.test`;
        const form = await openForm(colorScheme === 'dark' ? '127.0.0.21' : '127.0.0.22', url);
        expect((await form.submit('Dana Dark', email)).status).toBe(200);
        const mail = await t.smtp.waitForMail((m) => m.toText === email);
        await page.goto(links(mail).find((l) => l.includes('/join/confirm/'))!);
        expect(await unreadable(page)).toEqual([]);
        await page.click('button:has-text("Confirm")');
        await page.waitForSelector('h1.ok');
        expect(await unreadable(page)).toEqual([]);
      } finally {
        await ctx.close();
      }
    });
  });
}
