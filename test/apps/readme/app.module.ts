// The README's "Protect your own Nest app" snippet, verbatim: CI type-checks it and
// readme.e2e-spec.ts boots it and signs on through the simulator.
import {
  Controller,
  Get,
  Header,
  Injectable,
  Module,
  Post,
  UnauthorizedException,
  UseGuards,
} from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AuthGuard, PassportModule, PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-local';
import {
  DuoCsrfGuard,
  DuoFormFields,
  DuoModule,
  DuoStartGuard,
  MfaGuard,
  SkipMfa,
  type DuoFormFieldsValue,
} from '@duo-nest/core';

// Your first factor, as you have it today (here: passport-local with one demo account).
@Injectable()
class LocalStrategy extends PassportStrategy(Strategy) {
  validate(username: string, password: string) {
    if (username !== 'alice' || password !== 'correct horse battery') {
      throw new UnauthorizedException();
    }
    return { username };
  }
}

@Controller()
class LoginController {
  // Duo: the sign-on form carries the library's CSRF field (fields.html).
  @SkipMfa()
  @Get('login')
  @Header('content-type', 'text/html')
  form(@DuoFormFields() fields: DuoFormFieldsValue) {
    return `<form method="post">${fields.html}<input name="username"><input name="password" type="password"><button>Sign on</button></form>`;
  }

  // Duo: CSRF check and per-IP cap, then the password, then DuoStartGuard sends the browser to
  // Duo (per-username cap first); the body stays empty.
  @SkipMfa() @Post('login') @UseGuards(DuoCsrfGuard, AuthGuard('local'), DuoStartGuard) login() {}
}

@Module({
  imports: [
    PassportModule,
    // Duo: the module, its options, and the callback route at the path of redirectUri.
    DuoModule.forRootAsync({
      useFactory: () => ({
        clientId: process.env.DUO_CLIENT_ID ?? '',
        clientSecret: process.env.DUO_CLIENT_SECRET ?? '',
        apiHost: process.env.DUO_API_HOST ?? '',
        redirectUri: process.env.DUO_REDIRECT_URI ?? '', // https://app.example/auth/duo/callback
        sessionSecret: process.env.SESSION_SECRET ?? '',
        allowInsecureHttp: process.env.DUO_API_HOST?.startsWith('http://127.0.0.1:'), // simulator
      }),
    }),
  ],
  controllers: [LoginController],
  // Duo: every route needs MFA unless @SkipMfa().
  providers: [LocalStrategy, { provide: APP_GUARD, useExisting: MfaGuard }],
})
export class AppModule {}
