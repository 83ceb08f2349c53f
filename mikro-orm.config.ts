import { ormOptions } from './src/db/orm.ts';

/** For the MikroORM CLI (`npm run migration:create`); the app itself builds its options in src/app.ts. */
export default ormOptions(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/roster');
