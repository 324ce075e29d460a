import {
  Controller,
  Get,
  Injectable,
  Module,
  UnauthorizedException,
  type DynamicModule,
  type ExecutionContext,
} from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { DuoModule, MfaGuard, type DuoModuleOptions, type MfaDenial } from '@duo-nest/core';

/** The key of the app's internal callers (a real app reads it from its secrets). */
export const INTERNAL_KEY = 'internal-caller-key-0123456789';

/**
 * An app that decides access differently: internal callers with the service key need no MFA
 * (`shouldSkip`), and a refusal is the app's own 401 with a sign-on link (`onDenied`).
 */
@Injectable()
export class ServiceKeyOrMfaGuard extends MfaGuard {
  protected override async shouldSkip(context: ExecutionContext): Promise<boolean> {
    const key = this.getRequest(context).headers['x-service-key'];
    return key === INTERNAL_KEY || (await super.shouldSkip(context));
  }

  protected override onDenied(_context: ExecutionContext, denial: MfaDenial): void {
    throw new UnauthorizedException({ reason: denial.code, signOn: '/login' });
  }
}

@Controller()
class ReportsController {
  @Get('reports')
  reports() {
    return { reports: 3 };
  }
}

@Module({})
export class MfaGuardHooksAppModule {
  static register(options: DuoModuleOptions): DynamicModule {
    return {
      module: MfaGuardHooksAppModule,
      imports: [DuoModule.forRoot(options)],
      controllers: [ReportsController],
      providers: [ServiceKeyOrMfaGuard, { provide: APP_GUARD, useExisting: ServiceKeyOrMfaGuard }],
    };
  }
}
