import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import passport from 'passport';
import { DuoFlowService } from './duo-flow.service.js';
import type { NormalizedDuoModuleOptions } from './duo-module-options.js';
import { DUO_STRATEGY, InjectDuoOptions } from './duo.tokens.js';
import { PassportDuoStrategy, type DuoStrategyOutcome } from './passport-duo.strategy.js';

/**
 * The Nest face of PassportDuoStrategy, registered as 'duo' in a Passport instance of its own:
 * the global one is process-wide, so two apps (or two DuoModules) would otherwise replace each
 * other's strategy and send users through the wrong configuration.
 */
@Injectable()
export class DuoStrategy extends PassportStrategy(PassportDuoStrategy, DUO_STRATEGY) {
  declare private ownPassport?: passport.Authenticator;

  constructor(flow: DuoFlowService, @InjectDuoOptions() options: NormalizedDuoModuleOptions) {
    super(flow, options.callbackPath);
  }

  /** Called by the PassportStrategy mixin's constructor (before field initializers run). */
  getPassportInstance(): passport.Authenticator {
    this.ownPassport ??= new passport.Authenticator();
    return this.ownPassport;
  }

  /** The outcome becomes `req.user` for the start and callback handlers (the MFA result on callback). */
  validate(outcome: DuoStrategyOutcome): DuoStrategyOutcome {
    return outcome;
  }
}
