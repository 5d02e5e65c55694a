import { search, type SearchHit } from './tools/search.js';
import { summarize } from './tools/summarize.js';
import { toCsvRow } from './utils/csv.js';
import { withRetry } from './utils/retry.js';

export interface Finding {
  source: string;
  claim: string;
  confidence: number;
}

export interface Report {
  question: string;
  findings: Finding[];
}

const MAX_SOURCES = 8;

export async function runAgent(question: string): Promise<Report> {
  const hits: SearchHit[] = await withRetry(() => search(question, MAX_SOURCES));
  const findings: Finding[] = [];
  for (const hit of hits) {
    const claim = await summarize(hit.snippet);
    findings.push({ source: hit.url, claim, confidence: hit.score });
  }
  return { question, findings };
}

export function reportToCsv(report: Report): string {
  const header = toCsvRow(['source', 'claim', 'confidence']);
  const rows = report.findings.map((f) => toCsvRow([f.source, f.claim, f.confidence.toFixed(2)]));
  return [header, ...rows].join('\n') + '\n';
}
