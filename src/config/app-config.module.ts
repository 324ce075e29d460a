import { Module, type DynamicModule } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { validateEnv } from './env.validation.js';

/**
 * The validated environment as a ConfigService of this app alone. (ConfigModule.forRoot keeps its
 * values process-wide, so two apps in one process, as the tests run them, would share them.)
 */
@Module({})
export class AppConfigModule {
  static forRoot(rawEnv: Record<string, string | undefined>): DynamicModule {
    const config = new ConfigService(validateEnv(rawEnv));
    return {
      module: AppConfigModule,
      global: true,
      providers: [{ provide: ConfigService, useValue: config }],
      exports: [ConfigService],
    };
  }
}
