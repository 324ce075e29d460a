import { Controller, Get, Module, Post, UseGuards, type DynamicModule } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import {
  CurrentMfa,
  DuoModule,
  DuoStartGuard,
  MfaGuard,
  SkipMfa,
  type DuoModuleOptions,
  type MfaSession,
} from '../../../src/duo/index.js';

/** Duo alone: the seed's username form is the first factor; DuoModule serves the callback. */
@Controller()
class DuoAloneController {
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
