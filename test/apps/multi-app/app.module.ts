import { Controller, Get, Module, Post, UseGuards, type DynamicModule } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import {
  CurrentMfa,
  DuoFormFields,
  DuoModule,
  DuoStartGuard,
  MfaGuard,
  RequireMfa,
  SkipMfa,
  type DuoFormFieldsValue,
  type DuoModuleOptions,
  type MfaSession,
} from '@duo-nest/core';

const view = (s: MfaSession) => ({
  username: s.username,
  factor: s.factor,
  application: s.application,
  applications: s.applications,
});

/** A sign-on form, a plain MFA route and an admin route that needs the `admin` application. */
@Controller()
class MultiAppController {
  @SkipMfa()
  @Get('login')
  form(@DuoFormFields() fields: DuoFormFieldsValue): string {
    return `<form method="post" action="/login">${fields.html}<input name="username"></form>`;
  }

  @SkipMfa()
  @Post('login')
  @UseGuards(DuoStartGuard)
  login(): void {}

  @Get('plain')
  plain(@CurrentMfa() session: MfaSession) {
    return view(session);
  }

  @RequireMfa({ application: 'admin' })
  @Get('admin')
  admin(@CurrentMfa() session: MfaSession) {
    return view(session);
  }
}

@Module({})
export class MultiAppModule {
  static register(options: DuoModuleOptions): DynamicModule {
    return {
      module: MultiAppModule,
      imports: [DuoModule.forRoot({ ...options, errorFilter: true })],
      controllers: [MultiAppController],
      providers: [{ provide: APP_GUARD, useExisting: MfaGuard }],
    };
  }
}
