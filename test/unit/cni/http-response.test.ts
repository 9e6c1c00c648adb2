/**
 * The plugin's HTTP/1.1 response reader (src/cni/http-response.ts): each framing of RFC 9112
 * §6.3, answers split at every byte, and the malformed or cut-short answers it must refuse.
 */
import { describe, expect, it } from 'vitest';
import {
  HttpBodyTooLargeError,
  HttpResponseError,
  MAX_HEAD,
  ResponseReader,
  type HttpAnswer,
} from '../../../src/cni/http-response.js';

const LIMIT = 1024;

/**
 * Feeds `pieces` in order (strings as one byte per character), then the end of the connection.
 */
const read = (pieces: (string | Buffer)[], limit = LIMIT): HttpAnswer => {
  const reader = new ResponseReader(limit);
  for (const p of pieces) {
    const answer = reader.push(typeof p === 'string' ? Buffer.from(p, 'latin1') : p);
    if (answer !== undefined) return answer;
  }
  return reader.end();
};

/** `text` one byte at a time. */
const bytes = (text: string): string[] =>
  [...Buffer.from(text, 'utf8')].map(b => String.fromCharCode(b));

const failure = (pieces: (string | Buffer)[], limit = LIMIT): Error => {
  try {
    read(pieces, limit);
  } catch (e) {
    if (e instanceof Error) return e;
  }
  throw new Error('expected the reader to throw');
};

const POD = '{"kind":"Pod","metadata":{"name":"web-0","annotations":{"note":"é"}}}';
const podBytes = Buffer.byteLength(POD);

describe('ResponseReader', () => {
  it('reads a Content-Length body and answers before the connection ends', () => {
    const reader = new ResponseReader(LIMIT);
    const answer = reader.push(
      Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${podBytes}\r\n\r\n${POD}`),
    );
    expect(answer).toEqual({ status: 200, body: POD, location: undefined });
  });

  it('reads the same answer split at every byte (UTF-8 kept whole)', () => {
    const text = `HTTP/1.1 200 OK\r\ncontent-length: ${podBytes}\r\n\r\n${POD}`;
    expect(read(bytes(text))).toMatchObject({ status: 200, body: POD });
  });

  it('decodes the chunked transfer coding, with extensions and trailers, split at every byte', () => {
    const a = POD.slice(0, 10);
    const b = POD.slice(10);
    const text =
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
      `${Buffer.byteLength(a).toString(16)};name=value\r\n${a}\r\n` +
      `${Buffer.byteLength(b).toString(16).toUpperCase()}\r\n${b}\r\n` +
      '0\r\nX-Trailer: yes\r\n\r\n';
    expect(read([Buffer.from(text)])).toMatchObject({ status: 200, body: POD });
    expect(read(bytes(text))).toMatchObject({ status: 200, body: POD });
  });

  it('lets Transfer-Encoding override Content-Length', () => {
    const text =
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n';
    expect(read([text]).body).toBe('abc');
  });

  it('reads a body that runs to the end of the connection', () => {
    const reader = new ResponseReader(LIMIT);
    expect(reader.push(Buffer.from('HTTP/1.0 200 OK\r\n\r\n{"a":'))).toBeUndefined();
    expect(reader.push(Buffer.from('1}'))).toBeUndefined();
    expect(reader.end()).toMatchObject({ status: 200, body: '{"a":1}' });
  });

  it('reads no body for 204 and 304, and an empty one for Content-Length: 0', () => {
    expect(read(['HTTP/1.1 204 No Content\r\n\r\n'])).toMatchObject({ status: 204, body: '' });
    expect(read(['HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n'])).toMatchObject({
      status: 304,
      body: '',
    });
    expect(read(['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'])).toMatchObject({ body: '' });
  });

  it('skips interim 1xx answers', () => {
    const text =
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n' +
      'HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}';
    expect(read([text])).toMatchObject({ status: 404, body: '{}' });
  });

  it('keeps the Location of a redirect and a status line without a reason', () => {
    const text =
      'HTTP/1.1 302\r\nLocation:  https://login.example.com/sso \r\nContent-Length: 0\r\n\r\n';
    expect(read([text])).toEqual({
      status: 302,
      body: '',
      location: 'https://login.example.com/sso',
    });
  });

  it('reads a Kubernetes Status body of an error answer', () => {
    const status = '{"kind":"Status","apiVersion":"v1","status":"Failure","code":403}';
    const text = `HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n${status.length.toString(16)}\r\n${status}\r\n0\r\n\r\n`;
    expect(read([text])).toMatchObject({ status: 403, body: status });
  });

  it('ignores what follows a complete answer', () => {
    const reader = new ResponseReader(LIMIT);
    const answer = reader.push(
      Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}garbage'),
    );
    expect(answer?.body).toBe('{}');
    expect(reader.push(Buffer.from('more garbage'))).toBe(answer);
    expect(reader.end()).toBe(answer);
  });

  describe('cut short', () => {
    for (const [what, pieces] of [
      ['nothing at all', []],
      ['half a head', ['HTTP/1.1 200 OK\r\nContent-Le']],
      ['a Content-Length body', ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{"a"']],
      ['a chunk', ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n{"a"']],
      [
        'before the last chunk',
        ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n'],
      ],
      ['in the trailers', ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n']],
    ] as const) {
      it(`refuses ${what}`, () => {
        const e = failure([...pieces]);
        expect(e).toBeInstanceOf(HttpResponseError);
        expect(e.message).toMatch(/^the connection closed before/);
      });
    }
  });

  describe('malformed', () => {
    for (const [what, text, message] of [
      ['a status line that is not HTTP/1.x', 'HTTP/2 200\r\n\r\n', 'bad status line'],
      ['a non-numeric status', 'HTTP/1.1 2OO OK\r\n\r\n', 'bad status line'],
      ['a status below 100', 'HTTP/1.1 099 Odd\r\n\r\n', 'bad status line'],
      ['a status run into its reason', 'HTTP/1.1 2000K\r\n\r\n', 'bad status line'],
      ['no status line at all', '{"kind":"Pod"}\r\n\r\n', 'bad status line'],
      ['a header line without a colon', 'HTTP/1.1 200 OK\r\nnonsense\r\n\r\n', 'bad header line'],
      ['a folded header line', 'HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n', 'bad header line'],
      [
        'a bad Content-Length',
        'HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n',
        'bad Content-Length',
      ],
      [
        'conflicting Content-Lengths',
        'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n',
        'conflicting Content-Length headers',
      ],
      [
        'a bad chunk size',
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
        'bad chunk size',
      ],
      [
        'a chunk longer than its size',
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n',
        'chunk not ended',
      ],
      ['an upgrade', 'HTTP/1.1 101 Switching Protocols\r\n\r\n', 'unexpected 101'],
    ] as const) {
      it(`refuses ${what}`, () => {
        const e = failure([text]);
        expect(e).toBeInstanceOf(HttpResponseError);
        expect(e.message).toContain(message);
      });
    }

    it('refuses a head larger than MAX_HEAD, complete or not', () => {
      const big = `HTTP/1.1 200 OK\r\nX-Big: ${'x'.repeat(MAX_HEAD)}`;
      expect(failure([big]).message).toContain('head larger than');
      expect(failure([`${big}\r\n\r\n`]).message).toContain('head larger than');
    });

    it('refuses an endless chunk-size line', () => {
      const text = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${'x'.repeat(2000)}`;
      expect(failure([text]).message).toContain('chunk-size line longer than');
    });
  });

  describe('a body over the limit', () => {
    it('is refused from its Content-Length, before it arrives', () => {
      const reader = new ResponseReader(LIMIT);
      expect(() =>
        reader.push(Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${LIMIT + 1}\r\n\r\n`)),
      ).toThrow(HttpBodyTooLargeError);
    });

    it('is refused from a chunk size', () => {
      const text = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${(LIMIT + 1).toString(16)}\r\n`;
      expect(failure([text])).toBeInstanceOf(HttpBodyTooLargeError);
    });

    it('is refused as chunks add up past it', () => {
      const chunk = `200\r\n${'x'.repeat(0x200)}\r\n`;
      const text = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunk}${chunk}${chunk}`;
      expect(failure([text])).toBeInstanceOf(HttpBodyTooLargeError);
    });

    it('is refused when a body that runs to the end of the connection grows past it', () => {
      const e = failure(['HTTP/1.1 200 OK\r\n\r\n', 'x'.repeat(LIMIT), 'x']);
      expect(e).toBeInstanceOf(HttpBodyTooLargeError);
    });

    it('is accepted at exactly the limit', () => {
      const body = 'x'.repeat(LIMIT);
      expect(read([`HTTP/1.1 200 OK\r\nContent-Length: ${LIMIT}\r\n\r\n${body}`]).body).toBe(body);
    });
  });
});
