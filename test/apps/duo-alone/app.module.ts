import {
  Controller,
  Get,
  Header,
  Module,
  Post,
  UseGuards,
  type DynamicModule,
} from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import {
  CurrentMfa,
  DuoFormFields,
  DuoModule,
  DuoStartGuard,
  MfaGuard,
  SkipMfa,
  type DuoFormFieldsValue,
  type DuoModuleOptions,
  type MfaSession,
} from '@duo-nest/core';

/**
 * Duo alone: the seed's username form is the first factor; DuoModule serves the callback, caps
 * the starts and callbacks, and checks the form's CSRF token. No defence of the app's own here.
 */
@Controller()
class DuoAloneController {
  @SkipMfa()
  @Get('login')
  @Header('content-type', 'text/html; charset=utf-8')
  form(@DuoFormFields() fields: DuoFormFieldsValue): string {
    return `<form method="post" action="/login">${fields.html}<input name="username"><button>Sign on</button></form>`;
  }

  @SkipMfa()
  @Post('login')
  @UseGuards(DuoStartGuard)
  login(): void {}

  @Get('me')
  me(@CurrentMfa() session: MfaSession) {
    return { username: session.username, mfa: session.mfa };
  }
}

@Module({})
export class DuoAloneAppModule {
  /** `guard: 'useClass'` registers MfaGuard the old way (only to show what tests then cannot do). */
  static register(
    options: DuoModuleOptions,
    guard: 'useExisting' | 'useClass' = 'useExisting',
  ): DynamicModule {
    return {
      module: DuoAloneAppModule,
      imports: [DuoModule.forRoot(options)],
      controllers: [DuoAloneController],
      providers: [
        guard === 'useExisting'
          ? { provide: APP_GUARD, useExisting: MfaGuard }
          : { provide: APP_GUARD, useClass: MfaGuard },
      ],
    };
  }
}
