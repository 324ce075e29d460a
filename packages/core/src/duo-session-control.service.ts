import { Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { DuoFlowService } from './duo-flow.service.js';
import { requestContext } from './duo-request-context.js';
import { storeCall } from './duo-store-call.js';
import { InjectSessionStore } from './duo.tokens.js';
import type { SessionStore, SessionSummary } from './stores/session-store.interface.js';

/** Who asks for a session-control action: the admin's username, and their request (for the audit row). */
export interface DuoSessionControlActor {
  username: string;
  req?: Request;
}

/**
 * Control over live sessions, for an app's admin routes (the audit package's session routes use
 * it): list a user's sessions (by handle, never by id), end one or all of them, or mark the user
 * compromised. Every action works on the session store, so with Redis it takes effect on every
 * instance at once; each is reported through `onEvent` after it is done (`session_revoked`,
 * `user_marked_compromised`, with the admin in `detail.actor`). The caller decides who may act.
 */
@Injectable()
export class DuoSessionControl {
  constructor(
    @InjectSessionStore() private readonly store: SessionStore,
    private readonly flow: DuoFlowService,
  ) {}

  /** The live sessions of `username`, newest first. */
  list(username: string): Promise<SessionSummary[]> {
    return storeCall('session', () => this.store.listForUser(username));
  }

  /** Ends the session `handle` of `username`; false (and no event) when there is no such session. */
  async revoke(username: string, handle: string, actor: DuoSessionControlActor): Promise<boolean> {
    const done = await storeCall('session', () => this.store.destroyByHandle(username, handle));
    if (done) {
      await this.report('session_revoked', username, actor, { scope: 'one', revoked: 1 });
    }
    return done;
  }

  /** Ends every session of `username`; answers how many. Always reported (a count of 0 included). */
  async revokeAll(username: string, actor: DuoSessionControlActor): Promise<number> {
    const n = await storeCall('session', () => this.store.destroyAllForUser(username));
    await this.report('session_revoked', username, actor, { scope: 'all', revoked: n });
    return n;
  }

  /**
   * Marks `username` compromised: ends every session of theirs (every instance, through the
   * shared store) and records `user_marked_compromised`. It does not block new sign-ons: disable
   * the user in Duo (or the first factor) for that; see the module docs.
   */
  async markCompromised(username: string, actor: DuoSessionControlActor): Promise<number> {
    const n = await storeCall('session', () => this.store.destroyAllForUser(username));
    await this.report('user_marked_compromised', username, actor, { revoked: n });
    return n;
  }

  // After the action: the revocation stands even when the event cannot be recorded; the caller
  // then gets audit_unavailable (503) rather than a success it could not prove.
  private report(
    type: 'session_revoked' | 'user_marked_compromised',
    username: string,
    actor: DuoSessionControlActor,
    detail: Record<string, string | number>,
  ): Promise<void> {
    return this.flow.emit(
      {
        type,
        outcome: 'success',
        username,
        reason: type === 'session_revoked' ? 'admin_revoked' : 'compromised',
        ...(actor.req ? requestContext(actor.req) : {}),
        ...(actor.req ? { path: actor.req.path } : {}),
        detail: { ...detail, actor: actor.username },
      },
      true,
    );
  }
}
