// Where the CPU went during a load run: CPU seconds of each process the run names (from
// /proc/<pid>/stat), of the bench process itself (autocannon runs in it), and of the whole machine
// (/proc/stat), so a figure can be read against what else was running. Linux only; elsewhere the
// figures are null.
import { readFileSync } from 'node:fs';

const CLOCK_TICKS_PER_SECOND = 100;

/** utime + stime of a process in seconds, or null when it cannot be read. */
function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** Busy and total CPU seconds of the machine, all cores. */
function machineCpuSeconds(): { busy: number; total: number } | null {
  try {
    const [cpu] = readFileSync('/proc/stat', 'utf8').split('\n');
    const ticks = cpu.trim().split(/\s+/).slice(1).map(Number);
    const idle = ticks[3] + (ticks[4] ?? 0);
    const total = ticks.reduce((sum, value) => sum + value, 0);
    return { busy: (total - idle) / CLOCK_TICKS_PER_SECOND, total: total / CLOCK_TICKS_PER_SECOND };
  } catch {
    return null;
  }
}

/** Cores used (CPU seconds per second) by each named group of processes over a window. */
export interface CpuShares {
  /** Per group: average cores busy, e.g. 0.95 = one core almost fully. */
  cores: Record<string, number | null>;
  /** The whole machine's busy cores, everything included (other users' processes too). */
  machineCores: number | null;
  /** Busy cores not accounted to any named group nor to the bench process. */
  otherCores: number | null;
}

/**
 * Starts a window over `groups` (name → pids); `stop()` gives the cores each used meanwhile. The
 * bench process is always counted, as "bench (autocannon)".
 */
export function startCpuWindow(groups: Record<string, number[]>): { stop(): CpuShares } {
  const started = performance.now();
  const self = process.cpuUsage();
  const machine = machineCpuSeconds();
  const before = Object.fromEntries(Object.entries(groups).map(([name, pids]) => [name, pids.map(processCpuSeconds)]));
  return {
    stop(): CpuShares {
      const seconds = (performance.now() - started) / 1000;
      const cores: Record<string, number | null> = {};
      for (const [name, pids] of Object.entries(groups)) {
        const deltas = pids.map((pid, index) => {
          const now = processCpuSeconds(pid);
          const then = before[name][index];
          return now == null || then == null ? null : now - then;
        });
        cores[name] = deltas.some((delta) => delta == null) ? null : round2(deltas.reduce((sum: number, delta) => sum + delta!, 0) / seconds);
      }
      const own = process.cpuUsage(self);
      cores['bench (autocannon)'] = round2((own.user + own.system) / 1e6 / seconds);
      const machineNow = machineCpuSeconds();
      const machineCores = machine && machineNow ? round2(((machineNow.busy - machine.busy) / (machineNow.total - machine.total)) * coresOf(machineNow, machine, seconds)) : null;
      const accounted = Object.values(cores).reduce((sum: number, value) => sum + (value ?? 0), 0);
      return { cores, machineCores, otherCores: machineCores == null ? null : round2(Math.max(0, machineCores - accounted)) };
    },
  };
}

/** How many cores /proc/stat's totals span: its total seconds over the wall-clock seconds. */
function coresOf(now: { total: number }, then: { total: number }, seconds: number): number {
  return Math.round((now.total - then.total) / seconds);
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}
