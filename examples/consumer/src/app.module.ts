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
  RequireDuoGroups,
  RequireMfa,
  SkipMfa,
  type DuoFormFieldsValue,
  type DuoModuleOptions,
  type MfaSession,
} from '@duo-nest/core';

/** The first factor's accounts (a real app checks a password hash in its user store). */
const PASSWORDS: ReadonlyMap<string, string> = new Map([
  ['alice', 'alice-password'],
  ['bob', 'bob-password'],
  ['carol', 'carol-password'],
  ['mallory', 'mallory-password'],
]);

/** The first factor: passport-local. */
@Injectable()
class LocalStrategy extends PassportStrategy(Strategy) {
  validate(username: string, password: string): { username: string } {
    if (PASSWORDS.get(username) !== password) {
      throw new UnauthorizedException();
    }
    return { username };
  }
}

@Controller()
class LoginController {
  @SkipMfa()
  @Get('login')
  @Header('content-type', 'text/html; charset=utf-8')
  form(@DuoFormFields() fields: DuoFormFieldsValue): string {
    return `<form method="post" action="/login">${fields.html}<input name="username"><input name="password" type="password"><button>Sign on</button></form>`;
  }

  // CSRF check and per-IP cap, the password, then Duo (303 to the prompt).
  @SkipMfa()
  @Post('login')
  @UseGuards(DuoCsrfGuard, AuthGuard('local'), DuoStartGuard)
  login(): void {}
}

/** Every route here needs MFA (the global MfaGuard); some ask for more. */
@Controller()
class AccountController {
  @Get('profile')
  profile(@CurrentMfa() mfa: MfaSession): { username: string; factor: string | undefined } {
    return { username: mfa.username, factor: mfa.factor };
  }

  @Get('orders')
  orders(@CurrentMfa() mfa: MfaSession): { owner: string; orders: string[] } {
    return { owner: mfa.username, orders: ['A-1001', 'A-1002'] };
  }

  /** Step-up: an MFA at most 5 minutes old. */
  @Post('payments')
  @RequireMfa({ maxAgeMs: 5 * 60_000 })
  pay(@CurrentMfa() mfa: MfaSession): { paidBy: string } {
    return { paidBy: mfa.username };
  }

  /** Duo group: only members of `admins` (auth_context.user.groups). */
  @Get('admin')
  @RequireDuoGroups('admins')
  admin(@CurrentMfa() mfa: MfaSession): { admin: string; groups: string[] } {
    return { admin: mfa.username, groups: mfa.groups };
  }
}

@Module({})
export class AppModule {
  /** The app with these Duo options (from the environment in main.ts, from the test kit in tests). */
  static register(duo: DuoModuleOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [PassportModule, DuoModule.forRoot(duo)],
      controllers: [LoginController, AccountController],
      providers: [LocalStrategy, { provide: APP_GUARD, useExisting: MfaGuard }],
    };
  }
}
