import { ConfigurableModuleBuilder, type Provider } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { DuoExceptionFilter } from './duo-exception.filter.js';
import type { DuoModuleOptions } from './duo-module-options.interface.js';
import type { NormalizedDuoModuleOptions } from './duo-module-options.js';
import { DUO_OPTIONS } from './duo.tokens.js';

/** Options of forRoot/forRootAsync that shape the module itself (known before the options factory runs). */
export interface DuoModuleExtras {
  /** Register the module for every importer (no import needed elsewhere). @default true */
  isGlobal?: boolean;
  /**
   * Register DuoExceptionFilter as a global filter (APP_FILTER): every DuoError and
   * DuoHttpException of the app becomes an HTML page or a 303 to the sign-on page for browsers,
   * JSON `{ statusCode, error, message }` otherwise. Off: refusals reach the app's own filters as
   * DuoHttpException (Nest's default answers the same status and JSON body); the module's
   * callback route answers with the library's mapping either way. @default false
   */
  errorFilter?: boolean;
}

const ERROR_FILTER: Provider = {
  provide: APP_FILTER,
  inject: [DUO_OPTIONS],
  useFactory: (o: NormalizedDuoModuleOptions) => new DuoExceptionFilter(o.signOnPath, o),
};

export const {
  ConfigurableModuleClass: DuoConfigurableModuleClass,
  MODULE_OPTIONS_TOKEN: DUO_MODULE_OPTIONS,
  OPTIONS_TYPE: DUO_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: DUO_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<DuoModuleOptions>({ moduleName: 'Duo' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createDuoOptions')
  .setExtras<DuoModuleExtras>(
    { isGlobal: true, errorFilter: false },
    (definition, { isGlobal, errorFilter }) => ({
      ...definition,
      global: isGlobal,
      providers: errorFilter
        ? [...(definition.providers ?? []), ERROR_FILTER]
        : definition.providers,
    }),
  )
  .build();
