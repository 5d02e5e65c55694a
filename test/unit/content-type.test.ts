import { describe, expect, it } from 'vitest';
import { guessContentType } from '../../src/core/content-type.js';

describe('guessContentType', () => {
  it.each([
    ['index.html', 'text/html; charset=utf-8'],
    ['styles.css', 'text/css; charset=utf-8'],
    ['notes.txt', 'text/plain; charset=utf-8'],
    ['README.md', 'text/markdown; charset=utf-8'],
    ['data.json', 'application/json; charset=utf-8'],
    ['app.js', 'text/javascript; charset=utf-8'], // RFC 9239,
    ['app.mjs', 'text/javascript; charset=utf-8'],
    ['app.ts', 'application/typescript; charset=utf-8'],
    ['View.tsx', 'application/typescript; charset=utf-8'],
    ['config.yaml', 'application/yaml; charset=utf-8'],
    ['pyproject.toml', 'application/toml; charset=utf-8'],
    ['main.py', 'text/x-python; charset=utf-8'],
    ['run.sh', 'application/x-sh; charset=utf-8'],
    ['data.csv', 'text/csv; charset=utf-8'],
    ['feed.xml', 'application/xml; charset=utf-8'],
    ['logo.svg', 'image/svg+xml; charset=utf-8'],
    ['photo.png', 'image/png'],
    ['photo.JPG', 'image/jpeg'],
    ['archive.zip', 'application/zip'],
    ['doc.pdf', 'application/pdf'],
    ['model.bin', 'application/octet-stream'],
    ['no-extension', 'application/octet-stream'],
    ['weird.unknownext', 'application/octet-stream'],
    ['Makefile', 'text/plain; charset=utf-8'],
    ['Dockerfile', 'text/plain; charset=utf-8'],
    ['.syncignore', 'text/plain; charset=utf-8'],
    ['src/deep/path/file.json', 'application/json; charset=utf-8'],
  ])('%s → %s', (name, expected) => {
    expect(guessContentType(name)).toBe(expected);
  });
});
