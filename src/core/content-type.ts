import mime from 'mime-types';

const OCTET = 'application/octet-stream';

/** Extensions mime-types gets wrong for source code, or does not know. */
const OVERRIDES: Record<string, string> = {
  ts: 'application/typescript',
  mts: 'application/typescript',
  cts: 'application/typescript',
  tsx: 'application/typescript',
  jsx: 'text/jsx',
  mjs: 'text/javascript',
  cjs: 'text/javascript',
  py: 'text/x-python',
  rb: 'text/x-ruby',
  go: 'text/x-go',
  rs: 'text/x-rust',
  kt: 'text/x-kotlin',
  swift: 'text/x-swift',
  sh: 'application/x-sh',
  bash: 'application/x-sh',
  zsh: 'application/x-sh',
  sql: 'application/sql',
  toml: 'application/toml',
  yaml: 'application/yaml',
  yml: 'application/yaml',
  md: 'text/markdown',
  markdown: 'text/markdown',
  ipynb: 'application/x-ipynb+json',
  jsonl: 'application/jsonl',
  ndjson: 'application/x-ndjson',
  env: 'text/plain',
  ini: 'text/plain',
  cfg: 'text/plain',
  conf: 'text/plain',
  lock: 'text/plain',
  txt: 'text/plain',
  log: 'text/plain',
  vue: 'text/plain',
  svelte: 'text/plain',
  gradle: 'text/plain',
  tf: 'text/plain',
  proto: 'text/plain',
  graphql: 'application/graphql',
  gql: 'application/graphql',
};

/** Well-known extension-less file names that are text. */
const TEXT_NAMES = new Set([
  'makefile',
  'dockerfile',
  'license',
  'readme',
  'changelog',
  'procfile',
  'gemfile',
  'rakefile',
  'jenkinsfile',
  'vagrantfile',
  '.gitignore',
  '.gitattributes',
  '.dockerignore',
  '.syncignore',
  '.npmrc',
  '.editorconfig',
  '.prettierrc',
  '.eslintrc',
  '.nvmrc',
]);

const TEXT_APPLICATION = new Set([
  'application/json',
  'application/ld+json',
  'application/manifest+json',
  'application/x-ipynb+json',
  'application/jsonl',
  'application/x-ndjson',
  'application/javascript',
  'application/typescript',
  'application/xml',
  'application/xhtml+xml',
  'application/yaml',
  'application/x-yaml',
  'application/toml',
  'application/sql',
  'application/graphql',
  'application/x-sh',
  'application/x-httpd-php',
  'application/rtf',
  'image/svg+xml',
]);

/** Whether a bare MIME type (no parameters) is text that should carry `charset=utf-8`. */
export function isTextMimeType(type: string): boolean {
  return type.startsWith('text/') || TEXT_APPLICATION.has(type) || type.endsWith('+json') || type.endsWith('+xml');
}

/**
 * Content-Type for a file name, from its extension. Text types (`text/*`, JSON,
 * JavaScript, TypeScript, YAML, XML, SVG, shell…) get `; charset=utf-8`;
 * unknown types are `application/octet-stream`.
 *
 * @example
 * guessContentType('photo.png'); // 'image/png'
 * guessContentType('app.ts');    // 'application/typescript; charset=utf-8'
 */
export function guessContentType(name: string): string {
  const base = (name.split('/').pop() ?? name).toLowerCase();
  if (TEXT_NAMES.has(base)) return 'text/plain; charset=utf-8';
  const dot = base.lastIndexOf('.');
  const ext = dot > 0 ? base.slice(dot + 1) : '';
  let type: string | undefined = OVERRIDES[ext];
  if (type === undefined && ext !== '') {
    const looked = mime.lookup(ext);
    type = looked === false ? undefined : looked;
  }
  if (type === undefined) return OCTET;
  return isTextMimeType(type) ? `${type}; charset=utf-8` : type;
}
