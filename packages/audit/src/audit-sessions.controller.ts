import {
  Controller,
  Get,
  Header,
  HttpCode,
  Param,
  Post,
  Query,
  Req,
  Res,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import {
  DuoFormFields,
  DuoSessionControl,
  type DuoFormFieldsValue,
  type MfaSession,
  type SessionSummary,
} from '@duo-nest/core';
import { checkUsername, PAGE_CSP } from '@duo-nest/core/internal';
import { AuditAdminGuard } from './audit-admin.guard.js';
import { AuditApiExceptionFilter, AuditNotFoundError } from './audit-api.filter.js';
import { parseNoQuery } from './audit-query.dto.js';
import {
  auditSessionsPage,
  SESSION_PAGE_NOTICES,
  type SessionPageNotice,
} from './audit-sessions-page.js';
import { AuditQueryError } from './audit.repository.js';

type RawQuery = Record<string, unknown>;

/** A session as the API shows it: the summary with ISO times; never the id or the app data. */
export type AuditSessionView = Omit<
  SessionSummary,
  'createdAt' | 'lastSeenAt' | 'idleExpiresAt' | 'absoluteExpiresAt'
> & { createdAt: string; lastSeenAt: string; idleExpiresAt: string; absoluteExpiresAt: string };

export interface AuditSessionsResponse {
  username: string;
  sessions: AuditSessionView[];
}

const HANDLE_RE = /^[A-Za-z0-9_-]{43}$/;

function parseUsername(value: unknown): string {
  const check = checkUsername(value);
  if (!check.ok) {
    throw new AuditQueryError(`username is not a valid username (${check.why})`);
  }
  return check.username;
}

function parseHandle(value: unknown): string {
  if (typeof value !== 'string' || !HANDLE_RE.test(value)) {
    throw new AuditQueryError('handle must be a session handle (43 base64url characters)');
  }
  return value;
}

function toView(s: SessionSummary): AuditSessionView {
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    ...s,
    createdAt: iso(s.createdAt),
    lastSeenAt: iso(s.lastSeenAt),
    idleExpiresAt: iso(s.idleExpiresAt),
    absoluteExpiresAt: iso(s.absoluteExpiresAt),
  };
}

/** A browser's form post (the page's buttons) gets a 303 back to the page; API clients get JSON. */
function isFormPost(req: Request): boolean {
  return req.is('application/x-www-form-urlencoded') === 'application/x-www-form-urlencoded';
}

function backToPage(res: Response, username: string, done: SessionPageNotice): void {
  const q = new URLSearchParams({ username, done });
  res.setHeader('Cache-Control', 'no-store');
  res.redirect(303, `/audit/sessions?${q.toString()}`);
}

type AdminRequest = Request & { duoSession?: MfaSession };

function actorOf(req: AdminRequest): { username: string; req: Request } {
  // AuditAdminGuard has run: the session is there and belongs to an audit admin.
  return { username: req.duoSession?.username ?? '-', req };
}

/**
 * Control over live sessions for the audit admins (same guards as the audit API: a completed Duo
 * MFA session, then AuditAdminGuard). JSON API under /audit/users/:username, and the page at
 * /audit/sessions. Sessions are named by handle (the SHA-256 of the id), never by id. The POST
 * routes change state: the app must check CSRF on them (the reference app's CSRF middleware checks
 * every state-changing route; the page's forms carry the `_csrf` field, API clients send the
 * `X-CSRF-Token` header). Every action is audited (`session_revoked`, `user_marked_compromised`).
 */
@Controller('audit')
@UseGuards(AuditAdminGuard)
@UseFilters(AuditApiExceptionFilter)
export class AuditSessionsController {
  constructor(private readonly control: DuoSessionControl) {}

  @Get('users/:username/sessions')
  @Header('Cache-Control', 'no-store')
  async list(
    @Param('username') rawUsername: string,
    @Query() query: RawQuery,
  ): Promise<AuditSessionsResponse> {
    parseNoQuery(query);
    const username = parseUsername(rawUsername);
    const sessions = await this.control.list(username);
    return { username, sessions: sessions.map(toView) };
  }

  @Post('users/:username/sessions/:handle/revoke')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  async revoke(
    @Param('username') rawUsername: string,
    @Param('handle') rawHandle: string,
    @Req() req: AdminRequest,
    @Res({ passthrough: true }) res: Response,
  ): Promise<{ revoked: number } | undefined> {
    const username = parseUsername(rawUsername);
    const handle = parseHandle(rawHandle);
    const done = await this.control.revoke(username, handle, actorOf(req));
    if (isFormPost(req)) {
      backToPage(res, username, done ? 'revoked' : 'not_found');
      return undefined;
    }
    if (!done) {
      throw new AuditNotFoundError('this user has no live session with this handle');
    }
    return { revoked: 1 };
  }

  @Post('users/:username/sessions/revoke-all')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  async revokeAll(
    @Param('username') rawUsername: string,
    @Req() req: AdminRequest,
    @Res({ passthrough: true }) res: Response,
  ): Promise<{ revoked: number } | undefined> {
    const username = parseUsername(rawUsername);
    const revoked = await this.control.revokeAll(username, actorOf(req));
    if (isFormPost(req)) {
      backToPage(res, username, 'revoked-all');
      return undefined;
    }
    return { revoked };
  }

  @Post('users/:username/compromised')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  async compromised(
    @Param('username') rawUsername: string,
    @Req() req: AdminRequest,
    @Res({ passthrough: true }) res: Response,
  ): Promise<{ compromised: true; revoked: number } | undefined> {
    const username = parseUsername(rawUsername);
    const revoked = await this.control.markCompromised(username, actorOf(req));
    if (isFormPost(req)) {
      backToPage(res, username, 'compromised');
      return undefined;
    }
    return { compromised: true, revoked };
  }

  /** The page: `?username=` to show a user's sessions (and `done=` after an action). */
  @Get('sessions')
  async page(
    @Query() query: RawQuery,
    @DuoFormFields() fields: DuoFormFieldsValue,
    @Res() res: Response,
  ): Promise<void> {
    const send = (status: number, html: string) => {
      res.setHeader('Content-Security-Policy', PAGE_CSP);
      res.setHeader('Cache-Control', 'no-store');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.setHeader('Referrer-Policy', 'no-referrer');
      res.status(status).type('html').send(html);
    };
    const extra = Object.keys(query ?? {}).filter((k) => k !== 'username' && k !== 'done');
    const raw = query?.username;
    const done = query?.done;
    const notice =
      typeof done === 'string' && Object.hasOwn(SESSION_PAGE_NOTICES, done)
        ? (done as SessionPageNotice)
        : undefined;
    if (raw === undefined || raw === '') {
      send(200, auditSessionsPage({ sessions: [], csrfField: fields.html }));
      return;
    }
    const check = checkUsername(raw);
    if (extra.length > 0 || !check.ok || (done !== undefined && !notice)) {
      const error =
        extra.length > 0
          ? `unknown parameter ${extra[0]}`
          : !check.ok
            ? 'This is not a valid username.'
            : 'parameter done is not known';
      send(
        400,
        auditSessionsPage({
          username: typeof raw === 'string' ? raw : undefined,
          sessions: [],
          csrfField: fields.html,
          error,
        }),
      );
      return;
    }
    const sessions = await this.control.list(check.username);
    send(
      200,
      auditSessionsPage({ username: check.username, sessions, csrfField: fields.html, notice }),
    );
  }
}
