import { Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { NextFunction, Request, Response } from 'express';
import { DuoApplications, markStepUp } from './duo-applications.js';
import { DuoCsrfService } from './duo-csrf.service.js';
import { DuoError } from './duo.errors.js';
import { DuoExceptionFilter } from './duo-exception.filter.js';
import { DuoFlowService } from './duo-flow.service.js';
import { DuoHttpException } from './duo-http.exception.js';
import type { NormalizedDuoModuleOptions } from './duo-module-options.js';
import { sanitizeReturnTo } from './duo-module-options.js';
import { duoPageMessages, fillTemplate, pageLanguage } from './duo-i18n.js';
import { escapeHtml, page, pageCsp } from './duo-pages.js';
import { DuoSessionService } from './duo-session.service.js';
import { DuoSignOnProtection } from './duo-sign-on-protection.service.js';
import { InjectDuoOptions } from './duo.tokens.js';
import { APPLICATION_NAME_RE } from './stores/session-record.js';
import type { MfaSession } from './stores/session-store.interface.js';

const FORM_KEYS = new Set(['application', 'returnTo']);

/**
 * The step-up route (at `applicationsConfig.stepUpPath`, by default next to the callback:
 * `/auth/duo/step-up`), served with the callback route (`routes: true`).
 *
 * GET `?application=<name>&returnTo=<path>`: a page with a form (CSRF token included) that
 * continues to Duo for that application. POST (`application`, `returnTo`, `_csrf`): the start's
 * defences (per-IP cap, CSRF token and origin), then a sign-on for the CURRENT session's user:
 * no username is read from the request, so a step-up can never start Duo for someone else; the
 * per-username cap applies; it never fails open. Without a live MFA session both answer
 * `mfa_required` (HTML: to the sign-on page). The callback then opens a new session that records
 * this application beside those the old one had satisfied.
 */
@Injectable()
export class DuoStepUpRoute implements OnModuleInit {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly flow: DuoFlowService,
    private readonly sessions: DuoSessionService,
    private readonly protection: DuoSignOnProtection,
    private readonly csrf: DuoCsrfService,
    private readonly applications: DuoApplications,
    @InjectDuoOptions() private readonly options: NormalizedDuoModuleOptions,
  ) {}

  onModuleInit(): void {
    const adapter = this.adapterHost.httpAdapter;
    if (!this.options.routes || !adapter || adapter.getType() !== 'express') {
      return;
    }
    const path = this.applications.config.stepUpPath;
    const errors = new DuoExceptionFilter(this.options.signOnPath, this.options);
    const handle =
      (run: (req: Request, res: Response) => Promise<void>) =>
      (req: Request, res: Response, next?: unknown) => {
        const pass = typeof next === 'function' ? (next as NextFunction) : () => undefined;
        if (req.path !== path) {
          pass();
          return;
        }
        run(req, res)
          .catch((err: unknown) => {
            DuoSignOnProtection.answerHeaders(res, err);
            errors.respond(DuoHttpException.from(err), req, res);
          })
          .catch(pass);
      };
    adapter.get(
      path,
      handle((req, res) => this.page(req, res)),
    );
    adapter.post(
      path,
      handle((req, res) => this.start(req, res)),
    );
  }

  /** The form that continues to Duo for the application (GET). */
  private async page(req: Request, res: Response): Promise<void> {
    if (req.method !== 'GET') {
      throw new DuoError('invalid_request', 'The step-up request is malformed');
    }
    const query = req.query as Record<string, unknown>;
    const form = this.form(query, Object.keys(query));
    await this.currentSession(req);
    // The form's answer redirects to this application's Duo, and Chromium applies form-action to
    // that redirect: the page's CSP names its origin (an unknown application is refused here).
    const { client } = await this.applications.get(form.application, req);
    const fields = this.options.csrf === false ? '' : this.csrf.formFields(req, res).html;
    // In the request's language (DuoModule's locales), as the library's other pages.
    const language = pageLanguage(req, res, this.options);
    const t = duoPageMessages(language.lang);
    const explain = fillTemplate(
      t.stepUpExplain,
      { application: `<strong id="application">${escapeHtml(form.application)}</strong>` },
      escapeHtml,
    );
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Content-Security-Policy', pageCsp(client.options.apiOrigin));
    res
      .status(200)
      .type('html')
      .send(
        page(
          t.stepUpTitle,
          `<main><h1>${escapeHtml(t.stepUpHeading)}</h1>
<p id="explain">${explain}</p>
<form method="post" action="${escapeHtml(this.applications.config.stepUpPath)}">${fields}
<input type="hidden" name="application" value="${escapeHtml(form.application)}">
<input type="hidden" name="returnTo" value="${escapeHtml(form.returnTo)}">
<button id="step-up" class="duo-button" type="submit">${escapeHtml(t.stepUpButton)}</button></form></main>`,
          '',
          language,
        ),
      );
  }

  /** Starts Duo for the application as the session's user (POST, CSRF-checked, capped). */
  private async start(req: Request, res: Response): Promise<void> {
    await this.protection.checkStart(req);
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (typeof body !== 'object' || Array.isArray(body)) {
      throw new DuoError('invalid_request', 'The step-up request is malformed');
    }
    const form = this.form(body, Object.keys(body));
    if (Object.keys(req.query).length > 0) {
      throw new DuoError('invalid_request', 'The step-up request is malformed');
    }
    const session = await this.currentSession(req);
    // Known application? (A tenant's is loaded here; an unknown one is refused before any state.)
    await this.applications.get(form.application, req);
    markStepUp(req, form.application);
    req.body = { returnTo: form.returnTo };
    const outcome = await this.flow.start(req, () => session.username);
    if (outcome.kind !== 'redirect') {
      throw new DuoError('unavailable', 'Two-factor service unavailable');
    }
    this.flow.respondStart(res, outcome, req);
  }

  private form(
    source: Record<string, unknown>,
    keys: string[],
  ): { application: string; returnTo: string } {
    const { application, returnTo } = source;
    if (
      keys.some((k) => !FORM_KEYS.has(k)) ||
      typeof application !== 'string' ||
      !APPLICATION_NAME_RE.test(application) ||
      (returnTo !== undefined && typeof returnTo !== 'string')
    ) {
      throw new DuoError('invalid_request', 'The step-up request is malformed');
    }
    return {
      application,
      returnTo: sanitizeReturnTo(returnTo) ?? this.options.defaultReturnTo,
    };
  }

  /** The live MFA session a step-up belongs to; none, or a fail-open one: sign on first. */
  private async currentSession(req: Request): Promise<MfaSession> {
    const lookup = await this.sessions.lookup(req);
    if (lookup.status !== 'active' || !lookup.session.mfa) {
      throw new DuoError('mfa_required', 'Sign on with Duo first');
    }
    return lookup.session;
  }
}
