// The README's "Protect your own Nest app" snippet, verbatim: CI type-checks it and
// readme.e2e-spec.ts boots it and signs on through the simulator.
import {
  Controller,
  Injectable,
  Module,
  Post,
  UnauthorizedException,
  UseGuards,
} from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AuthGuard, PassportModule, PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-local';
import { DuoModule, DuoStartGuard, MfaGuard, SkipMfa } from '../../../src/duo/index.js';

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
  // Duo: after the password, DuoStartGuard sends the browser to Duo; the body stays empty.
  @SkipMfa() @Post('login') @UseGuards(AuthGuard('local'), DuoStartGuard) login() {}
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
