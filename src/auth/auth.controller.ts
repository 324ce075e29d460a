import { Controller, Get, HttpCode, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import type { Request, Response } from 'express';
import {
  AllowFailOpen,
  CurrentMfa,
  DuoFormFields,
  DuoSignOn,
  DuoStartGuard,
  isDuoBypass,
  RequireDuoGroups,
  RequireMfa,
  sanitizeReturnTo,
  satisfiedApplications,
  SkipMfa,
  type DuoFormFieldsValue,
  type MfaSession,
} from '@duo-nest/core';
import {
  InjectDuoOptions,
  PAGE_CSP,
  pageCsp,
  pageLanguage,
  type NormalizedDuoModuleOptions,
} from '@duo-nest/core/internal';
import { resultPage, signOnPage } from './auth.pages.js';
import { SIGN_ON_START_PATH } from './auth.paths.js';

/** What /me and /api/session tell about the session (never a token). */
function sessionFacts(session: MfaSession) {
  return {
    username: session.username,
    mfa: session.mfa,
    txid: session.txid,
    factor: session.factor,
    authTime: session.authTime,
    // How MFA was satisfied: a bypass (Duo let the user through without a factor) is said so.
    bypassed: isDuoBypass(session),
    application: session.application,
    // The Duo applications this session satisfied (default, admin) and when (Unix seconds).
    applications: satisfiedApplications(session),
    duoResult: session.duoResult,
    duoReason: session.duoReason,
    groups: session.groups,
    createdAt: new Date(session.createdAt).toISOString(),
  };
}

/** The seed's flow: sign-on form, Duo, and the "Sign on complete" page. */
@Controller()
export class AuthController {
  private readonly signOnCsp: string;

  constructor(
    private readonly signOn: DuoSignOn,
    // The pages' languages (locales, locale) are DuoModule's: one choice for every page.
    @InjectDuoOptions() private readonly options: NormalizedDuoModuleOptions,
  ) {
    this.signOnCsp = pageCsp(options.apiOrigin);
  }

  @SkipMfa()
  @Get()
  signOnForm(
    @Query('returnTo') returnTo: unknown,
    @Query('reason') reason: unknown,
    // The form's hidden CSRF field (API clients read the same token from the X-CSRF-Token header).
    @DuoFormFields() fields: DuoFormFieldsValue,
    @Req() req: Request,
    @Res() res: Response,
  ): void {
    res.setHeader('Content-Security-Policy', this.signOnCsp);
    res.setHeader('Cache-Control', 'no-store');
    res
      .type('html')
      .send(
        signOnPage(
          sanitizeReturnTo(returnTo),
          typeof reason === 'string' ? reason : undefined,
          fields.html,
          pageLanguage(req, res, this.options),
        ),
      );
  }

  /**
   * First factor done (here: a username, as in the seed): DuoStartGuard starts Duo MFA and answers
   * (303 to Duo, the button page, or fail-open). DuoModule serves the callback route itself.
   */
  @SkipMfa()
  @Post(SIGN_ON_START_PATH)
  @UseGuards(DuoStartGuard)
  login(): void {}

  @Get('result')
  result(
    @CurrentMfa() session: MfaSession,
    @DuoFormFields() fields: DuoFormFieldsValue,
    @Req() req: Request,
    @Res() res: Response,
  ): void {
    res.setHeader('Content-Security-Policy', PAGE_CSP);
    res.setHeader('Cache-Control', 'no-store');
    res
      .type('html')
      .send(
        resultPage(
          session.username,
          session.data.mfaResult,
          fields.html,
          pageLanguage(req, res, this.options),
        ),
      );
  }

  @Get('me')
  me(@CurrentMfa() session: MfaSession) {
    return sessionFacts(session);
  }

  /**
   * A single-page front end's session endpoint: the facts of /me, and `failOpen` (a fail-open
   * session is reported, with mfa: false, rather than refused). Without a session: 401 JSON
   * `{ error: 'mfa_required' }` (send `Accept: application/json`).
   */
  @AllowFailOpen()
  @Get('api/session')
  apiSession(@CurrentMfa() session: MfaSession, @Res({ passthrough: true }) res: Response) {
    res.setHeader('Cache-Control', 'no-store');
    return { signedIn: true, ...sessionFacts(session), failOpen: session.failOpen };
  }

  /**
   * The CSRF token for a front end's state-changing calls (the sign-on start and logout): send it
   * back in the X-CSRF-Token header. It also sets the CSRF cookie when the browser has none.
   */
  @SkipMfa()
  @Get('api/csrf')
  apiCsrf(@DuoFormFields() fields: DuoFormFieldsValue, @Res({ passthrough: true }) res: Response) {
    res.setHeader('Cache-Control', 'no-store');
    return { csrfToken: fields.csrfToken };
  }

  /** Demo of @AllowFailOpen(): answers a fail-open session too (mfa: false says no MFA happened). */
  @AllowFailOpen()
  @Get('status')
  status(@CurrentMfa() session: MfaSession) {
    return { username: session.username, mfa: session.mfa, failOpen: session.failOpen };
  }

  /** Demo of step-up: needs an MFA at most one minute old. */
  @RequireMfa({ maxAgeMs: 60_000 })
  @Get('step-up')
  stepUp(@CurrentMfa() session: MfaSession) {
    return { username: session.username, authTime: session.authTime, stepUp: true };
  }

  /**
   * Demo of Duo groups, the bypass policy and a second Duo application: members of the Duo group
   * `admins` only (a user in no Duo group is refused), never a session Duo let through without a
   * factor (bypass), and an MFA with the `admin` Duo application (DUO_ADMIN_APP_CLIENT_ID/SECRET:
   * a default session is stepped up into it; unset, `admin` is the main application).
   */
  @RequireMfa({ application: 'admin', allowBypass: false })
  @RequireDuoGroups('admins')
  @Get('admin')
  admin(@CurrentMfa() session: MfaSession) {
    return { username: session.username, groups: session.groups, admin: true };
  }

  @SkipMfa()
  @Post('logout')
  @HttpCode(303)
  async logout(@Req() req: Request, @Res() res: Response): Promise<void> {
    // The app's CSRF middleware checked this POST (it checks every one but the sign-on start).
    await this.signOn.signOut(req, res);
    res.setHeader('Cache-Control', 'no-store');
    if (req.accepts(['json', 'html']) === 'json') {
      res.status(200).json({ signedOut: true });
      return;
    }
    res.redirect(303, '/?reason=signed_out');
  }
}
