/** Where a page of Duo's v2 authentication log ends: `[timestamp in ms, txid]`, as Duo sends it. */
export type DuoAuthLogCursor = readonly [timestampMs: string, txid: string];

/** One query of `GET /admin/v2/logs/authentication`. */
export interface DuoAuthLogQuery {
  /** Earliest event time, Unix ms (13 digits), inclusive. Required by Duo. */
  mintime: number;
  /** Latest event time, Unix ms (13 digits), inclusive; strictly greater than mintime. Required by Duo. */
  maxtime: number;
  /** Entries per page, 1..1000 (Duo's maximum). @default 1000 */
  limit?: number;
  /** `ts:asc` (oldest first, what a cursor that must survive restarts wants) or `ts:desc`. @default 'ts:asc' */
  sort?: 'ts:asc' | 'ts:desc';
  /** The `nextOffset` of the previous page; absent for the first page. */
  nextOffset?: DuoAuthLogCursor;
  /** Only these applications (integration keys, e.g. the Universal Prompt client id). @default all */
  applications?: readonly string[];
}

export interface DuoAuthLogLocation {
  city?: string | null;
  state?: string | null;
  country?: string | null;
}

/**
 * One entry of Duo's v2 authentication log, as documented by Duo. Fields the client checks are
 * typed; every other field Duo sends is kept as is (Duo may add fields at any time).
 */
export interface DuoAuthLogEntry {
  /** The transaction id; the same as the id_token's `auth_context.txid`. */
  txid: string;
  /** Unix time of the event, in seconds. */
  timestamp: number;
  isotimestamp?: string;
  /** `success`, `denied`, `failure`, `error` or `fraud` (Duo may add values). */
  result: string;
  /** Why, such as `user_approved`, `user_marked_fraud`, `locked_out`, `bypass_user`. */
  reason: string | null;
  /** How, such as `duo_push`, `passcode`, `not_available`. */
  factor: string | null;
  event_type?: string | null;
  user: { name: string | null; key?: string | null; groups?: string[] } & Record<string, unknown>;
  application: { key: string | null; name?: string | null } & Record<string, unknown>;
  access_device?:
    ({ ip?: string | null; location?: DuoAuthLogLocation } & Record<string, unknown>) | null;
  auth_device?: ({ ip?: string | null; name?: string | null } & Record<string, unknown>) | null;
  [field: string]: unknown;
}

/** One page of the log. */
export interface DuoAuthLogPage {
  entries: DuoAuthLogEntry[];
  /** `metadata.total_objects`: how many entries match the query (all pages), when Duo says. */
  totalObjects: number | undefined;
  /** The cursor of the next page; null when this page is the last. */
  nextOffset: DuoAuthLogCursor | null;
  /** HTTP tries this page took (more than 1 after 429s). */
  attempts: number;
}
