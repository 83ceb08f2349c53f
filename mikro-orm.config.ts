import { ormOptions } from './src/db/orm.ts';

if (!process.env.DATABASE_URL) {
  throw new Error(
    'The MikroORM CLI needs DATABASE_URL. For migrations use npm run migration:create / migration:up / migration:down, which also reach the embedded database under .data/.',
  );
}

/** For the MikroORM CLI with DATABASE_URL set; `npm run migration:*` (src/db/migrate.ts) is the usual way. */
export default ormOptions(process.env.DATABASE_URL);
