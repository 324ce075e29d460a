/**
 * The DataSource for the TypeORM CLI:
 *   npx nest build && npx typeorm migration:run -d dist/src/database/data-source.js
 * Reads DATABASE_URL (unset → ./data/duo-nest.sqlite). Exports exactly one DataSource.
 */
import { DataSource } from 'typeorm';
import { buildTypeOrmOptions } from './typeorm-options.js';

export default new DataSource(
  buildTypeOrmOptions({ databaseUrl: process.env.DATABASE_URL, migrationsRun: false }),
);
