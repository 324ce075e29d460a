import type { IncomingMessage } from 'node:http';

/** Largest request body the simulator reads; Duo's requests are a few kilobytes. */
export const MAX_BODY_BYTES = 64 * 1024;

export class BodyTooLargeError extends Error {}

export type Params = Map<string, string>;

/** Reads the whole request body, refusing more than MAX_BODY_BYTES. */
export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new BodyTooLargeError('request body too large'));
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** First value wins inside one source, as most form parsers do. */
function addFirst(target: Params, key: string, value: string): void {
  if (!target.has(key)) {
    target.set(key, value);
  }
}

export function parseUrlEncoded(text: string): Params {
  const out: Params = new Map();
  for (const [key, value] of new URLSearchParams(text)) {
    addFirst(out, key, value);
  }
  return out;
}

/** The boundary parameter of a multipart/form-data content type, or null. */
export function multipartBoundary(contentType: string): string | null {
  const match = /^multipart\/form-data\s*;(?:.*;)?\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(
    contentType,
  );
  return match ? (match[1] ?? match[2] ?? null) : null;
}

/**
 * A small multipart/form-data reader for text fields (PHP's curl sends this). File parts are
 * read as text too; the simulator has no use for uploads.
 */
export function parseMultipart(body: Buffer, boundary: string): Params {
  const out: Params = new Map();
  const delimiter = Buffer.from(`--${boundary}`);
  let pos = body.indexOf(delimiter);
  while (pos !== -1) {
    let start = pos + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') {
      break; // closing delimiter
    }
    if (body.subarray(start, start + 2).toString() === '\r\n') {
      start += 2;
    }
    const next = body.indexOf(delimiter, start);
    if (next === -1) {
      break;
    }
    const part = body.subarray(start, next);
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd !== -1) {
      const headers = part.subarray(0, headerEnd).toString('utf8');
      let value = part.subarray(headerEnd + 4);
      if (value.subarray(value.length - 2).toString() === '\r\n') {
        value = value.subarray(0, value.length - 2);
      }
      const name = /content-disposition:[^\r\n]*;\s*name="([^"]*)"/i.exec(headers)?.[1];
      if (name !== undefined) {
        addFirst(out, name, value.toString('utf8'));
      }
    }
    pos = next;
  }
  return out;
}

/** Parses the body by its content type (urlencoded, multipart or JSON objects of strings). */
export function parseBody(body: Buffer, contentType: string | undefined): Params {
  const type = (contentType ?? '').toLowerCase();
  if (body.length === 0) {
    return new Map();
  }
  const boundary = multipartBoundary(contentType ?? '');
  if (boundary) {
    return parseMultipart(body, boundary);
  }
  if (type.startsWith('application/x-www-form-urlencoded') || type === '') {
    return parseUrlEncoded(body.toString('utf8'));
  }
  return new Map();
}

/**
 * Query string and body merged: Python sends the token call in the query string, everyone else
 * in the body. A body value wins over the same key in the query.
 */
export async function readParams(req: IncomingMessage, url: URL): Promise<Params> {
  const merged = parseUrlEncoded(url.search.slice(1));
  const body = parseBody(await readBody(req), req.headers['content-type']);
  for (const [key, value] of body) {
    merged.set(key, value);
  }
  return merged;
}
