import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { DuoFlowService } from './duo-flow.service.js';
import type { NormalizedDuoModuleOptions } from './duo-module-options.js';
import { DUO_STRATEGY, InjectDuoOptions } from './duo.tokens.js';
import { PassportDuoStrategy, type DuoStrategyOutcome } from './passport-duo.strategy.js';

/** The Nest face of PassportDuoStrategy, registered as 'duo'. */
@Injectable()
export class DuoStrategy extends PassportStrategy(PassportDuoStrategy, DUO_STRATEGY) {
  constructor(flow: DuoFlowService, @InjectDuoOptions() options: NormalizedDuoModuleOptions) {
    super(flow, options.callbackPath);
  }

  /** The outcome becomes `req.user` for the start and callback handlers (the MFA result on callback). */
  validate(outcome: DuoStrategyOutcome): DuoStrategyOutcome {
    return outcome;
  }
}
