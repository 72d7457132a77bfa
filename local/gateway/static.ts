import { createReadStream, statSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { limitLabelsModule } from '../limit-names';
import { sendJson } from './http-io';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

const NO_CACHE = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' };

/**
 * Files of the page built when they are asked for, from declarations elsewhere: the limits' human
 * names come from the limit kinds, so a new kind's label reaches the page without an edit here.
 */
const GENERATED: Readonly<Record<string, () => string>> = {
  '/limit-labels.js': limitLabelsModule,
};

/** `GET` of the chat page's files under `dir` (and the generated ones); 404 outside it. */
export function serveStatic(res: ServerResponse, dir: string, pathname: string): void {
  const generated = Object.hasOwn(GENERATED, pathname) ? GENERATED[pathname] : undefined;
  if (generated) {
    serveText(res, pathname, generated());
    return;
  }
  const root = resolve(dir);
  const relative = normalize(decodeURIComponent(pathname)).replace(/^([/\\])+/, '');
  const file = resolve(root, relative === '' ? 'index.html' : relative);
  if (file !== root && !file.startsWith(root + sep)) {
    sendJson(res, 404, { message: 'Not Found' });
    return;
  }
  try {
    const stats = statSync(file);
    const target = stats.isDirectory() ? join(file, 'index.html') : file;
    const size = statSync(target).size;
    res.writeHead(200, { 'Content-Type': contentType(target), 'Content-Length': size, ...NO_CACHE });
    createReadStream(target).pipe(res);
  } catch {
    sendJson(res, 404, { message: 'Not Found' });
  }
}

function serveText(res: ServerResponse, pathname: string, text: string): void {
  res.writeHead(200, {
    'Content-Type': contentType(pathname),
    'Content-Length': Buffer.byteLength(text),
    ...NO_CACHE,
  });
  res.end(text);
}

function contentType(path: string): string {
  return CONTENT_TYPES[extname(path)] ?? 'application/octet-stream';
}
