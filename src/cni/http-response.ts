/**
 * Reads one HTTP/1.1 response, fed the bytes of a connection as they arrive: the status line, the
 * two headers the plugin uses (`Location`, and the framing ones), and the body, framed as RFC 9112
 * §6.3 says: none for 204 and 304, the chunked transfer coding, `Content-Length`, else the end of
 * the connection. Interim 1xx answers are skipped. The plugin sends `Connection: close` and one
 * GET, so there is no keep-alive, pipelining or upgrade to handle; anything else that does not
 * parse is an error, as it is for Node's own parser.
 *
 * Written for the CNI plugin's one GET, so that it needs `node:tls` but not `node:https` (the HTTP
 * client, agent, server and parser modules cost several milliseconds to load at every ADD).
 * No imports.
 */

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
  /** The `Location` header of a redirect. */
  readonly location?: string | undefined;
}

/** Largest status line plus headers accepted, as Node's default `--max-http-header-size`. */
export const MAX_HEAD = 16 * 1024;

/** Longest chunk-size line (size and extensions) accepted. */
const MAX_CHUNK_LINE = 1024;

/** The answer is not HTTP/1.x as the plugin reads it (malformed, or cut short). */
export class HttpResponseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HttpResponseError';
  }
}

/** The body is longer than the reader's limit; reading stopped there. */
export class HttpBodyTooLargeError extends Error {
  constructor(limit: number) {
    super(`the response body is larger than ${limit} bytes`);
    this.name = 'HttpBodyTooLargeError';
  }
}

type State = 'head' | 'length' | 'size' | 'data' | 'data-end' | 'trailer' | 'close' | 'done';

const CRLF = Buffer.from('\r\n');
const EMPTY = Buffer.alloc(0);

interface Head {
  status: number;
  location: string | undefined;
  /** A Transfer-Encoding was given (it overrides Content-Length, RFC 9112 §6.3). */
  encoded: boolean;
  chunked: boolean;
  length: number | undefined;
}

/** `HTTP/1.0 200` or `HTTP/1.1 404 Not Found`: the status code, or undefined. */
const parseStatusLine = (line: string): number | undefined => {
  if (!line.startsWith('HTTP/1.') || (line[7] !== '0' && line[7] !== '1') || line[8] !== ' ') {
    return undefined;
  }
  const code = line.slice(9, 12);
  if (code.length !== 3 || (line.length > 12 && line[12] !== ' ')) return undefined;
  let status = 0;
  for (const c of code) {
    if (c < '0' || c > '9') return undefined;
    status = status * 10 + (c.charCodeAt(0) - 48);
  }
  return status >= 100 ? status : undefined;
};

const isDigits = (s: string): boolean => {
  if (s === '') return false;
  for (const c of s) if (c < '0' || c > '9') return false;
  return true;
};

/** The value of one hex digit's character code, or -1. */
const hexValue = (c: number): number => {
  if (c >= 0x30 && c <= 0x39) return c - 0x30; // 0-9
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x57 : -1; // a-f, A-F
};

/** The value of a chunk-size line (hex digits, then optional `;extensions`), or undefined. */
const parseChunkSize = (line: string): number | undefined => {
  const semi = line.indexOf(';');
  const hex = (semi < 0 ? line : line.slice(0, semi)).trimEnd();
  if (hex === '' || hex.length > 8) return undefined;
  let size = 0;
  for (let i = 0; i < hex.length; i++) {
    const d = hexValue(hex.charCodeAt(i));
    if (d < 0) return undefined;
    size = size * 16 + d;
  }
  return size;
};

const malformed = (what: string): HttpResponseError =>
  new HttpResponseError(`malformed HTTP response: ${what}`);

/** Applies one `name: value` header line to what is known of the head. */
const applyHeader = (head: Head, line: string): void => {
  const colon = line.indexOf(':');
  if (colon <= 0 || line[0] === ' ' || line[0] === '\t') throw malformed('bad header line');
  const name = line.slice(0, colon).toLowerCase();
  const value = line.slice(colon + 1).trim();
  if (name === 'location') head.location = value;
  else if (name === 'transfer-encoding') {
    const codings = value.toLowerCase().split(',');
    head.encoded = true;
    head.chunked = codings[codings.length - 1]?.trim() === 'chunked';
  } else if (name === 'content-length') {
    if (!isDigits(value)) throw malformed('bad Content-Length');
    const length = Number(value);
    if (head.length !== undefined && head.length !== length) {
      throw malformed('conflicting Content-Length headers');
    }
    head.length = length;
  }
};

const parseHead = (text: string): Head => {
  const lines = text.split('\r\n');
  const status = parseStatusLine(lines[0] ?? '');
  if (status === undefined) throw malformed('bad status line');
  const head: Head = {
    status,
    location: undefined,
    encoded: false,
    chunked: false,
    length: undefined,
  };
  for (let i = 1; i < lines.length; i++) applyHeader(head, lines[i] ?? '');
  return head;
};

/**
 * One response, read incrementally: `push` each piece received and `end` at end-of-stream. Both
 * return the answer once it is complete and throw HttpResponseError or HttpBodyTooLargeError.
 */
export class ResponseReader {
  private readonly maxBody: number;
  private state: State = 'head';
  /** Received bytes not consumed yet (a partial head or chunk-size line, or chunk data). */
  private pending: Buffer = EMPTY;
  private readonly body: Buffer[] = [];
  private bodySize = 0;
  /** Bytes left in the current chunk, or of a Content-Length body. */
  private left = 0;
  private head: Head | undefined;
  private answer: HttpAnswer | undefined;

  constructor(maxBody: number) {
    this.maxBody = maxBody;
  }

  push(data: Buffer): HttpAnswer | undefined {
    if (this.state === 'done') return this.answer;
    this.pending = this.pending.length === 0 ? data : Buffer.concat([this.pending, data]);
    while (this.pending.length > 0 && this.step());
    return this.answer;
  }

  /** End of the connection: the answer when its body runs to the end, else an error. */
  end(): HttpAnswer {
    if (this.state === 'close') return this.finish();
    if (this.answer !== undefined) return this.answer;
    throw new HttpResponseError(
      this.state === 'head'
        ? 'the connection closed before a complete HTTP response head arrived'
        : 'the connection closed before the whole response body arrived',
    );
  }

  /** Consumes what it can of `pending`; false when it needs more bytes. */
  private step(): boolean {
    switch (this.state) {
      case 'head':
        return this.readHead();
      case 'length':
        this.take(Math.min(this.left, this.pending.length));
        if (this.left === 0) this.finish();
        return true;
      case 'close':
        this.take(this.pending.length);
        return true;
      case 'size':
        return this.readChunkSize();
      case 'data':
        this.take(Math.min(this.left, this.pending.length));
        if (this.left === 0) this.state = 'data-end';
        return true;
      case 'data-end':
        return this.readChunkEnd();
      case 'trailer':
        return this.readTrailer();
      case 'done':
        this.pending = EMPTY;
        return false;
    }
  }

  private readHead(): boolean {
    const end = this.pending.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.pending.length > MAX_HEAD) throw malformed(`head larger than ${MAX_HEAD} bytes`);
      return false;
    }
    if (end > MAX_HEAD) throw malformed(`head larger than ${MAX_HEAD} bytes`);
    const head = parseHead(this.pending.subarray(0, end).toString('latin1'));
    this.pending = this.pending.subarray(end + 4);
    if (head.status < 200) {
      if (head.status === 101) throw malformed('unexpected 101 Switching Protocols');
      return true; // interim answer (100, 103): the real one follows
    }
    this.head = head;
    this.startBody(head);
    return true;
  }

  private startBody(head: Head): void {
    if (head.status === 204 || head.status === 304) {
      this.finish();
    } else if (head.chunked) {
      this.state = 'size';
    } else if (!head.encoded && head.length !== undefined) {
      if (head.length > this.maxBody) throw new HttpBodyTooLargeError(this.maxBody);
      this.left = head.length;
      this.state = 'length';
      if (this.left === 0) this.finish();
    } else {
      this.state = 'close';
    }
  }

  /** Moves `n` bytes of `pending` into the body. */
  private take(n: number): void {
    if (n === 0) return;
    this.bodySize += n;
    if (this.bodySize > this.maxBody) throw new HttpBodyTooLargeError(this.maxBody);
    this.body.push(this.pending.subarray(0, n));
    this.pending = this.pending.subarray(n);
    this.left -= n;
  }

  /** The next CRLF-terminated line of `pending`, consumed; undefined while it is incomplete. */
  private line(max: number, what: string): string | undefined {
    const end = this.pending.indexOf(CRLF);
    if (end < 0) {
      if (this.pending.length > max) throw malformed(`${what} longer than ${max} bytes`);
      return undefined;
    }
    if (end > max) throw malformed(`${what} longer than ${max} bytes`);
    const text = this.pending.subarray(0, end).toString('latin1');
    this.pending = this.pending.subarray(end + 2);
    return text;
  }

  private readChunkSize(): boolean {
    const text = this.line(MAX_CHUNK_LINE, 'chunk-size line');
    if (text === undefined) return false;
    const size = parseChunkSize(text);
    if (size === undefined) throw malformed('bad chunk size');
    if (size === 0) {
      this.state = 'trailer';
      return true;
    }
    if (this.bodySize + size > this.maxBody) throw new HttpBodyTooLargeError(this.maxBody);
    this.left = size;
    this.state = 'data';
    return true;
  }

  private readChunkEnd(): boolean {
    if (this.pending.length < 2) return false;
    if (this.pending[0] !== 0x0d || this.pending[1] !== 0x0a) throw malformed('chunk not ended');
    this.pending = this.pending.subarray(2);
    this.state = 'size';
    return true;
  }

  private readTrailer(): boolean {
    const text = this.line(MAX_HEAD, 'trailer');
    if (text === undefined) return false;
    if (text === '') this.finish();
    return true;
  }

  private finish(): HttpAnswer {
    this.state = 'done';
    this.pending = EMPTY;
    const head = this.head;
    this.answer = {
      status: head?.status ?? 0,
      body: Buffer.concat(this.body).toString('utf8'),
      location: head?.location,
    };
    return this.answer;
  }
}
