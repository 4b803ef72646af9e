// Resident memory of a process, from /proc/<pid>/status (Linux only; elsewhere null), and the
// open-files limit a process runs under (/proc/<pid>/limits): a held watch is an open socket.
import { readFileSync } from 'node:fs';

/** VmRSS of `pid` in bytes, or null when it cannot be read. */
export function residentBytes(pid: number | 'self'): number | null {
  try {
    const kib = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kib === undefined ? null : Number(kib) * 1024;
  } catch {
    return null;
  }
}

/** The soft limit of open files of `pid`, or null when it cannot be read or is unlimited. */
export function openFilesLimit(pid: number | 'self'): number | null {
  try {
    const soft = /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))?.[1];
    return soft === undefined ? null : Number(soft);
  } catch {
    return null;
  }
}
