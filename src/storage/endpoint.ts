import type { S3Client } from '@aws-sdk/client-s3';

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443 };

/**
 * Where a client sends its requests, as recorded in the state file: the
 * custom endpoint normalised (`http://127.0.0.1:9000`, lower-case host, no
 * default port, no trailing slash), or `aws` for AWS's own endpoints (bucket
 * names are global there; a re-created bucket is caught by the remote
 * workspace identity instead).
 */
export async function endpointLabel(client: S3Client): Promise<string> {
  const config = client.config as { endpoint?: unknown };
  if (typeof config.endpoint !== 'function') return 'aws';
  try {
    const ep = (await (config.endpoint as () => Promise<{ protocol?: string; hostname?: string; port?: number; path?: string }>)()) ?? {};
    const protocol = (ep.protocol ?? 'https:').toLowerCase();
    const port = ep.port !== undefined && ep.port !== DEFAULT_PORTS[protocol] ? `:${ep.port}` : '';
    const path = (ep.path ?? '').replace(/\/+$/, '');
    return `${protocol}//${(ep.hostname ?? '').toLowerCase()}${port}${path}`;
  } catch {
    return 'unknown';
  }
}
