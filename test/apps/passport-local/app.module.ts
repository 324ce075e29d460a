import {
  Controller,
  Get,
  Header,
  Injectable,
  Module,
  Post,
  UnauthorizedException,
  UseGuards,
  type DynamicModule,
} from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AuthGuard, PassportModule, PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-local';
import {
  CurrentMfa,
  DuoCsrfGuard,
  DuoFormFields,
  DuoModule,
  DuoStartGuard,
  MfaGuard,
  SkipMfa,
  type DuoFormFieldsValue,
  type DuoModuleOptions,
  type MfaSession,
} from '@duo-nest/core';

/** The app's accounts: e-mail and password in, the Duo username out. */
const ACCOUNTS = new Map<string, { password: string; user: object }>([
  ['alice@example.com', { password: 'correct horse battery', user: { username: 'alice' } }],
  // A first factor that yields no username at all: Duo must refuse, never read the form instead.
  ['robot@example.com', { password: 'beep boop beep boop', user: { id: 7 } }],
]);

@Injectable()
class LocalStrategy extends PassportStrategy(Strategy) {
  constructor() {
    super({ usernameField: 'email' });
  }

  validate(email: string, password: string): object {
    PasswordThenDuoController.passwordChecks += 1;
    const account = ACCOUNTS.get(email);
    if (!account || account.password !== password) {
      throw new UnauthorizedException();
    }
    return account.user;
  }
}

/**
 * Duo after a password: the username Duo sees is `req.user.username`, set by passport-local.
 * DuoCsrfGuard comes first, so the library's per-IP cap and CSRF check run before the password
 * is checked (a forged or flooding form never reaches passport-local).
 */
@Controller()
class PasswordThenDuoController {
  /** How many times passport-local checked a password (a forged form must not get that far). */
  static passwordChecks = 0;

  @SkipMfa()
  @Get('login')
  @Header('content-type', 'text/html; charset=utf-8')
  form(@DuoFormFields() fields: DuoFormFieldsValue): string {
    return `<form method="post" action="/login">${fields.html}<input name="email"><input name="password" type="password"></form>`;
  }

  @SkipMfa()
  @Post('login')
  @UseGuards(DuoCsrfGuard, AuthGuard('local'), DuoStartGuard)
  login(): void {}

  @Get('me')
  me(@CurrentMfa() session: MfaSession) {
    return { username: session.username, mfa: session.mfa };
  }
}

@Module({})
export class PassportLocalAppModule {
  static readonly controller = PasswordThenDuoController;

  static register(options: DuoModuleOptions): DynamicModule {
    return {
      module: PassportLocalAppModule,
      imports: [PassportModule, DuoModule.forRoot(options)],
      controllers: [PasswordThenDuoController],
      providers: [LocalStrategy, { provide: APP_GUARD, useExisting: MfaGuard }],
    };
  }
}
