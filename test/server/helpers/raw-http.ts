import { connect } from 'node:net';

export interface RawResponse {
  /** The status code of the first response line; 0 when the server closed without one. */
  status: number;
  /** Everything the server sent. */
  text: string;
  /** The body of the first response (de-chunked). */
  body: string;
}

/**
 * Sends bytes as they are over a fresh TCP connection and reads until the server closes it.
 * fetch() and http.request normalise the request target; a hostile client does not.
 */
export function rawHttp(port: number, request: string, timeoutMs = 10_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer within ${timeoutMs} ms to ${JSON.stringify(request.slice(0, 60))}`)); }, timeoutMs);
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => { text += d; });
    socket.on('error', (err) => { clearTimeout(timer); reject(err); });
    socket.on('close', () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, text, body: bodyOf(text) });
    });
    socket.write(request);
  });
}

/** A GET with `target` written verbatim in the request line; the server is asked to close afterwards. */
export function getTarget(port: number, target: string): Promise<RawResponse> {
  return rawHttp(port, `GET ${target} HTTP/1.1\r\nHost: meshd\r\nConnection: close\r\n\r\n`);
}

/** The request targets that made WHATWG's URL parser throw in the request handler. */
export const HOSTILE_TARGETS = ['//[', 'http://[', '//a:b:c', '//%zz', 'http://a:b:c/', '//[::1', '*'];

function bodyOf(text: string): string {
  const split = text.indexOf('\r\n\r\n');
  if (split === -1) return '';
  const head = text.slice(0, split);
  let rest = text.slice(split + 4);
  if (!/^transfer-encoding: chunked$/im.test(head)) return rest;
  let body = '';
  for (;;) {
    const eol = rest.indexOf('\r\n');
    const size = parseInt(rest.slice(0, eol), 16);
    if (eol === -1 || !(size > 0)) return body;
    body += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}
