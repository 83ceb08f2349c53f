import type { EntityManager } from '@mikro-orm/postgresql';
import { CompiledQuery, type Transaction } from 'kysely';

/**
 * A SQL statement or fragment built with the `sql` tag: the text around the interpolations, and the
 * interpolated values, which are sent to Postgres as bind parameters ($1, $2, …) and never spliced into
 * the text. Nothing in the text is rewritten, so Postgres operators such as jsonb's `?` stay as written.
 */
export class Sql {
  readonly strings: readonly string[];
  readonly values: readonly unknown[];
  constructor(strings: readonly string[], values: readonly unknown[]) {
    this.strings = strings;
    this.values = values;
  }

  /** The text with `$n` placeholders and the values in their order; nested fragments flattened. */
  compile(): { text: string; values: unknown[] } {
    const values: unknown[] = [];
    const walk = (part: Sql): string =>
      part.strings.reduce((text, s, i) => {
        if (i === 0) return s;
        const value = part.values[i - 1];
        if (value instanceof Sql) return text + walk(value) + s;
        values.push(value);
        return `${text}$${values.length}${s}`;
      }, '');
    return { text: walk(this), values };
  }
}

/**
 * Tags a statement: ``sql`select id from app_user where account_id = ${id} and role = any(${roles})` ``.
 * An interpolated `Sql` is spliced in as SQL (with its own values); anything else is one bind parameter.
 * Arrays are Postgres arrays (use `= any(…)`); pass JSON as `JSON.stringify(value)` with a `::jsonb` cast.
 */
export function sql(strings: TemplateStringsArray, ...values: unknown[]): Sql {
  return new Sql([...strings], values);
}

/** Trusted SQL text (a column expression, a table name chosen by the code), spliced as it is. */
sql.raw = (text: string): Sql => new Sql([text], []);

/** Fragments joined by `separator` (SQL text, e.g. `' union all '`). */
sql.join = (parts: readonly Sql[], separator: string): Sql =>
  new Sql(
    parts.length === 0 ? [''] : ['', ...parts.slice(1).map(() => separator), ''],
    parts.length === 0 ? [] : [...parts],
  );

/**
 * Runs a statement on `em`'s connection, inside its transaction when it has one, and returns the rows.
 * Errors are MikroORM's exceptions (a unique violation is a `UniqueConstraintViolationException`), as
 * with the ORM's own queries. The one way Roster runs raw SQL.
 */
export async function query<T = Record<string, unknown>>(em: EntityManager, statement: Sql): Promise<T[]> {
  const { text, values } = statement.compile();
  return run<T>(em, text, values);
}

/** Runs a statement whose text already holds `$1..$n` placeholders; see {@link statements}. */
export type Statements = <T = Record<string, unknown>>(text: string, values?: unknown[]) => Promise<T[]>;

/**
 * The same as {@link query}, for long set-based statements written with Postgres' own `$1..$n`
 * placeholders (the CSV import's batches, whose rows travel as one JSON parameter). The text is sent as
 * written and the values as bind parameters.
 */
export function statements(em: EntityManager): Statements {
  return (text, values = []) => run(em, text, values);
}

/** A value sent as one jsonb parameter (`$1::jsonb`). */
export const json = (value: unknown): string => JSON.stringify(value);

async function run<T>(em: EntityManager, text: string, values: readonly unknown[]): Promise<T[]> {
  const trx = em.getTransactionContext<Transaction<unknown>>();
  try {
    const result = await (trx ?? em.getConnection().getClient()).executeQuery(
      CompiledQuery.raw(text, [...values]),
    );
    return result.rows as T[];
  } catch (err) {
    throw em
      .getPlatform()
      .getExceptionConverter()
      .convertException(err as Error);
  }
}
