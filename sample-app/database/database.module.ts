import { Module } from '@nestjs/common';
import { SAMPLE_APP_CONFIG, type SampleAppConfig } from '../config/sample-app-config.js';
import { SqliteDatabase } from './sqlite-database.js';

/** Provides the {@link SqliteDatabase}, opened, migrated and seeded before the first request. */
@Module({
  providers: [
    {
      provide: SqliteDatabase,
      inject: [SAMPLE_APP_CONFIG],
      useFactory: (config: SampleAppConfig) =>
        SqliteDatabase.open(config.dbPath, { queryDelayMs: config.queryDelayMs }),
    },
  ],
  exports: [SqliteDatabase],
})
export class DatabaseModule {}
