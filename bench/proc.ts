/**
 * CPU accounting of other processes from /proc (Linux only; `undefined`
 * elsewhere), shared by the benchmarks.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** s3rver's process (a child of this one running scripts/local-s3.mjs), for its CPU time. */
export function findServerPid(): number | undefined {
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (Number(statFields(entry)[1]) !== process.pid) continue;
        if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('local-s3.mjs')) return Number(entry);
      } catch {
        // gone
      }
    }
  } catch {
    // no /proc
  }
  return undefined;
}

/** CPU ms used so far by a process (utime + stime; USER_HZ = 100). */
export function cpuMsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const fields = statFields(String(pid));
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

/** The fields of /proc/<pid>/stat after the command name (which may contain spaces and parentheses). */
function statFields(pid: string): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}
