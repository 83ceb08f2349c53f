import { Migration } from '@mikro-orm/migrations';

/**
 * `scim.connected` audit events written before the connect form refused a user name, password, query or
 * fragment hold the URL as the admin entered it, and read API tokens can list them. They now keep what newer
 * events keep: scheme, host (with its port) and path, and `?[redacted]` when a query string or fragment was
 * there. The rule is written out here, not called from the app, so this migration stays as it is whatever
 * the app's code becomes. The URLs were stored as the WHATWG URL parser writes them (scheme and host in lower
 * case, anything unusual in a user name or password percent-encoded), so the authority ends at the first
 * `/`, `?` or `#` and the host follows its last `@`.
 *
 * Only the event's `data` changes, not its place in the read API's list (`change_xid`): the API promises
 * each audit event once. Copies read before stay as they were, so a password or key that was in such a URL
 * is to be changed at the service.
 */
export class Migration20261204120000_scim_connected_url_redacted extends Migration {
  override async up(): Promise<void> {
    this.addSql(`update "audit_event" e set "data" = jsonb_set(e."data", '{url}', to_jsonb(r."url"))
  from (
    select a."id",
      case when p."parts" is null then '[not a URL]'
        else lower(p."parts"[1]) || '//' || regexp_replace(p."parts"[2], '^.*@', '')
          || case when p."parts"[3] = '' then '/' else p."parts"[3] end
          -- A bare "?" or "#" hides nothing, as in the app.
          || case when length(coalesce(p."parts"[4], '')) > 1 or length(coalesce(p."parts"[5], '')) > 1
               then '?[redacted]' else '' end
      end as "url"
    from "audit_event" a
    cross join lateral (
      select regexp_match(a."data"->>'url', '^([A-Za-z][A-Za-z0-9+.-]*:)//([^/?#]*)([^?#]*)(\\?[^#]*)?(#.*)?$') as "parts"
    ) p
    where a."action" = 'scim.connected' and jsonb_typeof(a."data"->'url') = 'string'
  ) r
  where e."id" = r."id" and e."data"->>'url' is distinct from r."url";`);
  }

  override async down(): Promise<void> {
    // What was removed is not kept anywhere: there is nothing to put back.
  }
}
