import { Controller, Get, Module, Post, UseGuards, type DynamicModule } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import {
  CurrentMfa,
  DuoFormFields,
  DuoModule,
  DuoStartGuard,
  isDuoBypass,
  MfaGuard,
  RequireMfa,
  SkipMfa,
  type DuoFormFieldsValue,
  type DuoModuleOptions,
  type MfaSession,
} from '@duo-nest/core';

/** Routes with and without a factor and bypass policy (DuoModule's `policy` is the test's). */
@Controller()
class MfaPolicyController {
  @SkipMfa()
  @Get('login')
  form(@DuoFormFields() fields: DuoFormFieldsValue): string {
    return `<form method="post" action="/login">${fields.html}<input name="username"></form>`;
  }

  @SkipMfa()
  @Post('login')
  @UseGuards(DuoStartGuard)
  login(): void {}

  /** No @RequireMfa: DuoModule's policy decides. */
  @Get('plain')
  plain(@CurrentMfa() session: MfaSession) {
    return { username: session.username, factor: session.factor, bypassed: isDuoBypass(session) };
  }

  @RequireMfa({ factors: ['webauthn'] })
  @Get('webauthn')
  webauthn(@CurrentMfa() session: MfaSession) {
    return { username: session.username, factor: session.factor };
  }
}

@Module({})
export class MfaPolicyAppModule {
  static register(options: DuoModuleOptions): DynamicModule {
    return {
      module: MfaPolicyAppModule,
      imports: [DuoModule.forRoot({ ...options, errorFilter: true })],
      controllers: [MfaPolicyController],
      providers: [{ provide: APP_GUARD, useExisting: MfaGuard }],
    };
  }
}
