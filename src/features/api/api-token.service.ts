import { randomBytes, randomUUID } from 'node:crypto';
import { LockMode } from '@mikro-orm/core';
import { type EntityManager, UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import { query, type Sql, sql } from '../../db/sql.ts';
import { DomainError } from '../../shared/errors.ts';
import { hashToken } from '../../shared/ids.ts';
import { showsSomething } from '../../shared/visible.ts';
import { Account, type IAccount } from '../accounts/account.entity.ts';
import { audit, auditRefusal } from '../audit/audit.service.ts';
import type { Actor } from '../seats/seat.service.ts';
import { ApiToken, type IApiToken } from './api-token.entity.ts';

/** Every API token starts with this, so people and secret scanners recognise one wherever it turns up. */
export const TOKEN_PREFIX = 'roster_';
/** A token as Roster makes them (43 URL-safe characters after the prefix) or as a deployment sets one. */
export const TOKEN_PATTERN = /^roster_[A-Za-z0-9_-]{32,200}$/;
/** How much of a token lists show: the prefix and four characters, enough to tell tokens apart. */
const HINT_LENGTH = TOKEN_PREFIX.length + 4;
export const TOKEN_NAME_MAX = 60;
/** Active tokens per account; the Slack list shows them all in one modal. */
export const MAX_TOKENS = 20;
/** Who created and revokes the token set by API_TOKEN. */
export const DEPLOYMENT = 'deployment';
export const DEPLOYMENT_TOKEN_NAME = 'API_TOKEN';
/** last_used_at is written at most this often per token, so reading does not turn into writing. */
const LAST_USED_RESOLUTION_SECONDS = 60;

/** How long a new token works, in days, as the creation form offers it; null: until revoked. */
export const TOKEN_LIFETIMES = [30, 90, 365, null] as const;
export type TokenLifetime = (typeof TOKEN_LIFETIMES)[number];

/** A new token: shown once to whoever created it; only its hash is kept. */
export function newApiToken(): { token: string; hash: string; hint: string } {
  const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  return { token, hash: hashToken(token), hint: token.slice(0, HINT_LENGTH) };
}

/** The account and token behind a request to the API. */
export type ApiCaller = { tokenId: string; accountId: string; scope: string };

const NOT_ADMIN = 'Only admins can manage API tokens.';

/** API tokens: created and revoked by admins, looked up by hash on every API request. */
export class ApiTokenService {
  /** The account's tokens not revoked (expired ones too, until revoked), the deployment's first, then the oldest. */
  async list(em: EntityManager, account: IAccount): Promise<IApiToken[]> {
    return em.find(
      ApiToken,
      { account: account.id, revokedAt: null },
      { orderBy: { managed: 'desc', createdAt: 'asc' }, refresh: true },
    );
  }

  /**
   * Creates a read token for the account and returns it, the only time it exists outside the caller's
   * hands. Names are unique among the account's working tokens, so a repeated submission makes none.
   */
  async create(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    rawName: string,
    lifetime: TokenLifetime = null,
  ): Promise<{ token: string; row: IApiToken }> {
    await this.requireAdmin(em, account, actor, 'api_token.create_refused');
    if (!TOKEN_LIFETIMES.includes(lifetime)) {
      throw new DomainError('invalid_input', 'Choose how long the token works.', { field: 'expires' });
    }
    const name = rawName.trim().replace(/\s+/g, ' ');
    if (!name) throw new DomainError('invalid_input', 'Enter a name for the token.', { field: 'name' });
    if (!showsSomething(name)) {
      throw new DomainError('invalid_input', 'Enter a name: this one is only invisible characters.', {
        field: 'name',
      });
    }
    if (name.length > TOKEN_NAME_MAX) {
      throw new DomainError('invalid_input', `Keep the name to ${TOKEN_NAME_MAX} characters.`, {
        field: 'name',
      });
    }
    const { token, hash, hint } = newApiToken();
    try {
      const row = await em.transactional(async (tx) => {
        // One creation at a time per account, so two at once cannot both pass the count.
        await query(tx, sql`select id from account where id = ${account.id} for no key update`);
        const active = await tx.count(ApiToken, { account: account.id, revokedAt: null });
        if (active >= MAX_TOKENS) {
          throw new DomainError(
            'not_allowed',
            `An account can have ${MAX_TOKENS} tokens that are not revoked (expired ones count). Revoke one you no longer use first.`,
            { field: 'name' },
          );
        }
        const created = tx.create(ApiToken, {
          account: tx.getReference(Account, account.id),
          name,
          tokenHash: hash,
          hint,
          createdBy: actor.slackUserId,
          expiresAt: lifetime ? new Date(Date.now() + lifetime * 86_400_000) : null,
        });
        audit(tx, {
          account: tx.getReference(Account, account.id),
          actor: actor.slackUserId,
          action: 'api_token.created',
          subjectType: 'api_token',
          subjectId: created.id,
          surface: actor.surface,
          data: { name, hint, expiresInDays: lifetime },
        });
        return created;
      });
      return { token, row };
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException) {
        throw new DomainError(
          'conflict',
          `A working token is already named “${name}”. Choose another name.`,
          {
            field: 'name',
          },
        );
      }
      throw err;
    }
  }

  /**
   * Revokes one of the account's tokens; it stops working with the next request. Revoking a revoked token
   * changes nothing; the deployment's token is revoked by changing API_TOKEN, not here.
   */
  /** Revokes a token of `account`; `tokenId` is null when the request named none that could exist. */
  async revoke(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    tokenId: string | null,
  ): Promise<IApiToken> {
    await this.requireAdmin(em, account, actor, 'api_token.revoke_refused', tokenId ?? undefined);
    if (tokenId === null) throw new DomainError('not_found', 'That token no longer exists.');
    return em.transactional(async (tx) => {
      const row = await tx.findOne(
        ApiToken,
        { id: tokenId, account },
        { lockMode: LockMode.PESSIMISTIC_WRITE },
      );
      if (!row) throw new DomainError('not_found', 'That token no longer exists.');
      if (row.managed) {
        throw new DomainError(
          'not_allowed',
          'This token is managed by the deployment: change or remove API_TOKEN in its environment.',
        );
      }
      if (row.revokedAt) return row;
      row.revokedAt = new Date();
      row.revokedBy = actor.slackUserId;
      audit(tx, {
        account: tx.getReference(Account, account.id),
        actor: actor.slackUserId,
        action: 'api_token.revoked',
        subjectType: 'api_token',
        subjectId: row.id,
        surface: actor.surface,
        data: { name: row.name, hint: row.hint },
      });
      return row;
    });
  }

  /**
   * The working token a bearer value is, or null: unknown, revoked, expired and malformed values are alike
   * to the caller. Notes when the token was last used, to the minute.
   */
  async authenticate(em: EntityManager, bearer: string): Promise<ApiCaller | null> {
    if (!TOKEN_PATTERN.test(bearer)) return null;
    const [row] = await query<{ id: string; account_id: string; scope: string; stale: boolean }>(
      em,
      sql`select id, account_id, scope,
          (last_used_at is null or last_used_at < now() - make_interval(secs => ${LAST_USED_RESOLUTION_SECONDS})) as stale
        from api_token where token_hash = ${hashToken(bearer)} and revoked_at is null
          and (expires_at is null or expires_at > now())`,
    );
    if (!row) return null;
    if (row.stale) await query(em, sql`update api_token set last_used_at = now() where id = ${row.id}`);
    return { tokenId: row.id, accountId: row.account_id, scope: row.scope };
  }

  /**
   * Revokes every managed token API_TOKEN no longer sets, whichever workspace it served: run at start,
   * before the API answers and whether or not Slack does, so a token removed or changed in the environment
   * stops working with the restart even while Slack cannot be reached or refuses the bot token.
   */
  async retireDeploymentTokens(em: EntityManager, token: string | undefined): Promise<void> {
    const hash = token ? hashToken(token) : null;
    await em.transactional((tx) => this.retire(tx, sql`token_hash is distinct from ${hash}`));
  }

  /** Revokes the managed tokens `which` selects, each audited in the account it belonged to. */
  private async retire(tx: EntityManager, which: Sql): Promise<void> {
    // The deployment's token may have served another workspace before: each one retired is audited in
    // the account it belonged to, whose admins read that log.
    const retired = await query<{ id: string; account_id: string; name: string; hint: string }>(
      tx,
      sql`update api_token set revoked_at = now(), revoked_by = ${DEPLOYMENT}, updated_at = now()
        where managed and revoked_at is null and (${which})
        returning id, account_id, name, hint`,
    );
    for (const r of retired) {
      audit(tx, {
        account: tx.getReference(Account, r.account_id),
        actor: DEPLOYMENT,
        action: 'api_token.revoked',
        subjectType: 'api_token',
        subjectId: r.id,
        surface: 'system',
        data: { name: r.name, hint: r.hint, reason: 'API_TOKEN changed' },
      });
    }
  }

  /**
   * Makes API_TOKEN (or its absence) true for the account of the deployment's workspace: its hash stored
   * as a managed token, and any managed token the environment no longer sets, or set for another
   * workspace, revoked.
   */
  async applyDeploymentToken(em: EntityManager, account: IAccount, token: string | undefined): Promise<void> {
    const hash = token ? hashToken(token) : null;
    await em.transactional(async (tx) => {
      await this.retire(tx, sql`account_id <> ${account.id} or token_hash is distinct from ${hash}`);
      if (!token || !hash) return;
      const [row] = await query<{ id: string }>(
        tx,
        sql`insert into api_token (id, account_id, name, token_hash, hint, managed, created_by)
          values (${randomUUID()}, ${account.id}, ${DEPLOYMENT_TOKEN_NAME}, ${hash}, ${token.slice(0, HINT_LENGTH)}, true, ${DEPLOYMENT})
          on conflict (token_hash) do update set account_id = excluded.account_id, managed = true,
            revoked_at = null, revoked_by = null, expires_at = null, updated_at = now()
            where api_token.revoked_at is not null or api_token.account_id <> excluded.account_id or not api_token.managed
          returning id`,
      );
      if (row) {
        audit(tx, {
          account: tx.getReference(Account, account.id),
          actor: DEPLOYMENT,
          action: 'api_token.created',
          subjectType: 'api_token',
          subjectId: row.id,
          surface: 'system',
          data: { name: DEPLOYMENT_TOKEN_NAME, managed: true },
        });
      }
    });
  }

  private async requireAdmin(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    action: string,
    subjectId?: string,
  ): Promise<void> {
    if (actor.isAdmin) return;
    await auditRefusal(em, {
      account,
      actor: actor.slackUserId,
      action,
      subjectType: 'api_token',
      subjectId: subjectId ?? null,
      surface: actor.surface,
      data: { reason: 'not an admin' },
    });
    throw new DomainError('not_admin', NOT_ADMIN);
  }
}
