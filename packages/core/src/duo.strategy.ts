import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import passport from 'passport';
import { DuoFlowService, type DuoCallbackOutcome } from './duo-flow.service.js';
import type { NormalizedDuoModuleOptions } from './duo-module-options.js';
import { DUO_STRATEGY, InjectDuoOptions } from './duo.tokens.js';
import { PassportDuoStrategy } from './passport-duo.strategy.js';

/**
 * The Nest face of PassportDuoStrategy, registered as 'duo' in a Passport instance of its own:
 * the global one is process-wide, so two apps (or two DuoModules) would otherwise replace each
 * other's strategy and send users through the wrong configuration.
 */
@Injectable()
export class DuoStrategy extends PassportStrategy(PassportDuoStrategy, DUO_STRATEGY) {
  declare private ownPassport?: passport.Authenticator;

  constructor(flow: DuoFlowService, @InjectDuoOptions() options: NormalizedDuoModuleOptions) {
    super(flow, options.callbackPath, options.usernameResolver);
  }

  /** Called by the PassportStrategy mixin's constructor (before field initializers run). */
  getPassportInstance(): passport.Authenticator {
    this.ownPassport ??= new passport.Authenticator();
    return this.ownPassport;
  }

  /** The verified callback (Duo's MFA result and the pending login it completes). */
  validate(outcome: DuoCallbackOutcome): DuoCallbackOutcome {
    return outcome;
  }
}
