import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { DuoModuleOptions } from './duo-module-options.interface.js';

export const {
  ConfigurableModuleClass: DuoConfigurableModuleClass,
  MODULE_OPTIONS_TOKEN: DUO_MODULE_OPTIONS,
  OPTIONS_TYPE: DUO_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: DUO_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<DuoModuleOptions>({ moduleName: 'Duo' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createDuoOptions')
  .setExtras({ isGlobal: true }, (definition, { isGlobal }) => ({
    ...definition,
    global: isGlobal,
  }))
  .build();
