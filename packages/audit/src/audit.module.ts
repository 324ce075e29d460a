/**
 * AuditModule: the audit repository (TypeORM) and AuditService. The app provides the TypeORM
 * connection itself (TypeOrmModule.forRootAsync with buildTypeOrmOptions), then:
 *
 *   AuditModule.register({ chainKey, policy: 'spool', spoolDir, instanceId, writeTimeoutMs })
 *   AuditModule.registerAsync({ inject: [ConfigService], useFactory: (c) => ({ ... }) })
 */
import {
  Module,
  type DynamicModule,
  type InjectionToken,
  type ModuleMetadata,
  type OptionalFactoryDependency,
} from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AUDIT_ENTITIES } from './audit-event.entity.js';
import {
  AUDIT_MODULE_OPTIONS,
  resolveAuditOptions,
  type AuditModuleOptions,
} from './audit.options.js';
import { AuditRepository } from './audit.repository.js';
import { AuditService } from './audit.service.js';
import { TypeOrmAuditRepository } from './typeorm-audit.repository.js';

export interface AuditModuleAsyncOptions {
  imports?: ModuleMetadata['imports'];
  inject?: (InjectionToken | OptionalFactoryDependency)[];
  useFactory: (...args: never[]) => AuditModuleOptions | Promise<AuditModuleOptions>;
}

const PROVIDERS = [{ provide: AuditRepository, useClass: TypeOrmAuditRepository }, AuditService];

@Module({})
export class AuditModule {
  static register(options: AuditModuleOptions): DynamicModule {
    return {
      module: AuditModule,
      imports: [TypeOrmModule.forFeature([...AUDIT_ENTITIES])],
      providers: [
        { provide: AUDIT_MODULE_OPTIONS, useValue: resolveAuditOptions(options) },
        ...PROVIDERS,
      ],
      exports: [AuditService, AuditRepository, AUDIT_MODULE_OPTIONS],
    };
  }

  static registerAsync(options: AuditModuleAsyncOptions): DynamicModule {
    return {
      module: AuditModule,
      imports: [...(options.imports ?? []), TypeOrmModule.forFeature([...AUDIT_ENTITIES])],
      providers: [
        {
          provide: AUDIT_MODULE_OPTIONS,
          inject: options.inject ?? [],
          useFactory: async (...args: never[]) =>
            resolveAuditOptions(await options.useFactory(...args)),
        },
        ...PROVIDERS,
      ],
      exports: [AuditService, AuditRepository, AUDIT_MODULE_OPTIONS],
    };
  }
}
