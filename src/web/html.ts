/** Text safe to place in HTML. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

export class SafeHtml {
  readonly value: string;
  constructor(value: string) {
    this.value = value;
  }
  toString() {
    return this.value;
  }
}

/** A tagged template that escapes every interpolated value unless it is already SafeHtml. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    const rendered = Array.isArray(v)
      ? v.map((x) => (x instanceof SafeHtml ? x.value : escapeHtml(x))).join('')
      : v instanceof SafeHtml
        ? v.value
        : escapeHtml(v);
    out += rendered + (strings[i + 1] ?? '');
  });
  return new SafeHtml(out);
}

/** Text of several lines (a personal message) as HTML that shows its line breaks, each line escaped. */
export function lines(text: string): SafeHtml {
  return new SafeHtml(
    text
      .split(/\r\n|\r|\n/)
      .map(escapeHtml)
      .join('<br>'),
  );
}

const STYLE = `
  :root { color-scheme: light dark; --fg:#1d1c1d; --muted:#616061; --bg:#f8f8f8; --card:#fff; --accent:#4a154b; --on-accent:#fff; --ok:#007a5a; --err:#e01e5a; --line:#767676; }
  @media (prefers-color-scheme: dark) { :root { --fg:#e8e8e8; --muted:#ababad; --bg:#1a1d21; --card:#222529; --accent:#d4a3d6; --on-accent:#1a1d21; --ok:#2bac76; --err:#ff7a9a; --line:#bbb; } }
  * { box-sizing: border-box; }
  body { margin:0; font: 16px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; background:var(--bg); color:var(--fg); }
  main { max-width: 30rem; margin: 4rem auto; padding: 2rem; background: var(--card); border-radius: 12px; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
  h1 { font-size: 1.4rem; margin: 0 0 1rem; overflow-wrap: anywhere; }
  p { margin: .5rem 0; overflow-wrap: anywhere; }
  .muted { color: var(--muted); font-size: .9rem; }
  .ok { color: var(--ok); } .error { color: var(--err); }
  label { display:block; font-weight:600; margin-top:1rem; }
  input[type=text], input[type=email] { width:100%; padding:.6rem; margin-top:.3rem; font-size:1rem; border:1px solid var(--line); border-radius:6px; background:transparent; color:inherit; }
  button { margin-top:1.5rem; padding:.7rem 1.4rem; font-size:1rem; font-weight:600; border:0; border-radius:6px; background:var(--accent); color:var(--on-accent); cursor:pointer; }
  dl { display:grid; grid-template-columns: max-content minmax(0,1fr); gap:.3rem 1rem; } dt { color:var(--muted); } dd { margin:0; min-width:0; overflow-wrap:anywhere; }
`;

/** A whole page: small, styled, no scripts. */
export function page(title: string, body: SafeHtml): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>${escapeHtml(title)} · Roster</title><style>${STYLE}</style></head>
<body><main>${body.value}</main></body></html>`;
}

/**
 * An email's HTML part around `body`: Roster's font and colours, and text that wraps anywhere it must, so a
 * link written out, a long account name or a message of one long word fits a phone's screen instead of
 * making the reader scroll sideways (`word-break` for mail apps that know no `overflow-wrap: anywhere`).
 */
export function emailHtml(body: SafeHtml): string {
  return `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;color:#1d1c1d;line-height:1.5;word-break:break-word;overflow-wrap:anywhere">
${body.value}
</body></html>`;
}
