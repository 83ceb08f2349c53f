import { randomBytes } from 'node:crypto';
import { Migration } from '@mikro-orm/migrations';

/**
 * The audit log, which read API tokens can list, kept a webhook receiver's or SCIM service's URL with its
 * path, and many receivers carry their credential there (Zapier's `/hooks/catch/<id>/<key>/`, Slack's
 * `/services/T…/B…/<secret>`, Discord's, Make's, Pipedream's). Newer events keep the scheme and host (with
 * its port) and a fingerprint of the whole URL, an HMAC keyed by `audit_url_key`, made here once per
 * database: a plain hash of a URL whose key is short could be guessed by hashing candidates.
 *
 * The `url` of the `webhook.*` and `scim.*` events written before is cut to its scheme and host. They get no
 * fingerprint: what they kept no longer holds the whole URL (a query string was already gone), and a
 * fingerprint of part of it would not match the newer events'. The events of an endpoint still tell it apart
 * by their subject id. The rule is written out here, not called from the app, so this migration stays as
 * it is whatever the app's code becomes; the URLs were written by the app, so the authority ends at the
 * first `/`, `?` or `#`.
 *
 * Only the event's `data` changes, not its place in the read API's list (`change_xid`): the API promises
 * each audit event once. Copies read before stay as they were, so a key that was in such a path is to be
 * changed at the receiver.
 */
export class Migration20261213000000_audit_url_paths_redacted extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "audit_url_key" (
  "id" boolean primary key default true check ("id"),
  "key" bytea not null
);`);
    this.addSql(
      `insert into "audit_url_key" ("key") values (decode('${randomBytes(32).toString('hex')}', 'hex'));`,
    );
    this.addSql(`update "audit_event" e set "data" = jsonb_set(e."data", '{url}', to_jsonb(r."url"))
  from (
    select a."id",
      coalesce(lower(p."parts"[1]) || '//' || regexp_replace(p."parts"[2], '^.*@', ''), a."data"->>'url') as "url"
    from "audit_event" a
    cross join lateral (
      select regexp_match(a."data"->>'url', '^([A-Za-z][A-Za-z0-9+.-]*:)//([^/?#]*)') as "parts"
    ) p
    where (a."action" like 'webhook.%' or a."action" like 'scim.%') and jsonb_typeof(a."data"->'url') = 'string'
  ) r
  where e."id" = r."id" and e."data"->>'url' is distinct from r."url";`);
  }

  override async down(): Promise<void> {
    // What was removed is not kept anywhere: there is nothing to put back.
    this.addSql(`drop table "audit_url_key";`);
  }
}
