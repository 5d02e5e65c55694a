export interface SearchHit {
  url: string;
  title: string;
  snippet: string;
  score: number;
}

/** Query the search API (stubbed for the demo: returns canned results). */
export async function search(query: string, limit: number): Promise<SearchHit[]> {
  const canned: SearchHit[] = [
    { url: 'https://example.com/q3-results', title: 'Q3 results', snippet: `Revenue grew 12% (${query}).`, score: 0.91 },
    { url: 'https://example.org/analysis', title: 'Analyst note', snippet: 'Margins were flat quarter over quarter.', score: 0.74 },
  ];
  return canned.slice(0, limit);
}
