/** One CSV row, quoting fields that need it (RFC 4180). */
export function toCsvRow(fields: readonly string[]): string {
  return fields
    .map((f) => (/[",\n]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f))
    .join(',');
}
