// What still keeps the test process alive once every suite has finished: a socket, a server, a
// child process or a timer some suite opened and never closed, named with the suite it was made in
// and where. The e2e suites run in band, in the process the global setup and teardown run in, so a
// hook installed by the setup sees every one of them made. Jest's own open-handle report cannot
// stand in for this: it leaves TCP sockets out, and timers a library sets for itself, so a client
// left reconnecting made a run hang silently until CI's bound cut it.
// Plain JS: jest loads global setup and teardown outside its module system.
import { createHook } from 'node:async_hooks';
import { ChildProcess } from 'node:child_process';
import { Server, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Shared through the process, whichever copy of this module the setup, teardown or reporter loaded. */
const STATE = Symbol.for('task-cache.test.handles');
const TRACKED = new Set(['Timeout', 'TCPWRAP', 'TCPSERVERWRAP', 'PIPEWRAP', 'PROCESSWRAP']);
const STACK_FRAMES = 12;

function state() {
  globalThis[STATE] ??= { suite: '(before any suite)', live: new Map(), suiteOf: new Map(), byResource: new WeakMap(), hook: undefined };
  return globalThis[STATE];
}

/** The suite whose resources are being made now (the reporter says, as each file starts). */
export function setCurrentSuite(suite) {
  state().suite = suite;
}

/** From now on, remembers where each timer, socket, server and child process still alive was made. */
export function trackHandles() {
  const tracking = state();
  if (tracking.hook) return;
  tracking.hook = createHook({
    init(asyncId, type, triggerAsyncId, resource) {
      if (type === 'PROMISE') return;
      // A resource made by another (a client's reconnect timer, the socket that timer opens, a
      // tick between them) belongs to the suite of the first: a loop that outlives its suite is
      // named with the suite that started it, not with whichever suite is running when it is found.
      const suite = tracking.suiteOf.get(triggerAsyncId) ?? tracking.suite;
      tracking.suiteOf.set(asyncId, suite);
      if (!TRACKED.has(type)) return;
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = STACK_FRAMES;
      // The stack is captured here and formatted only if the resource is ever reported.
      const entry = { type, suite, created: new Error('made'), resource: new WeakRef(resource) };
      Error.stackTraceLimit = limit;
      tracking.live.set(asyncId, entry);
      tracking.byResource.set(resource, entry);
    },
    destroy(asyncId) {
      tracking.suiteOf.delete(asyncId);
      tracking.live.delete(asyncId);
    },
  });
  tracking.hook.enable();
}

/** One line per handle that keeps the event loop alive, apart from the process's own stdio. */
export function describeLeftoverHandles() {
  const { live, byResource } = state();
  const stdio = new Set([process.stdin, process.stdout, process.stderr]);
  const lines = [];
  for (const handle of process._getActiveHandles()) {
    if (stdio.has(handle)) continue;
    if (typeof handle.hasRef === 'function' && !handle.hasRef()) continue;
    lines.push(describe(handle) + origin(byResource.get(handle._handle ?? handle)));
  }
  // Timers are not handles to Node: the tracked ones are named, the rest only counted.
  const timers = [...live.values()].filter(({ type, resource }) => {
    const timer = type === 'Timeout' ? resource.deref() : undefined;
    return timer !== undefined && !timer._destroyed && timer.hasRef();
  });
  for (const entry of timers) lines.push(`timer of ${entry.resource.deref()?._idleTimeout} ms${origin(entry)}`);
  const untracked = process.getActiveResourcesInfo().filter((type) => type === 'Timeout').length - timers.length;
  if (untracked > 0) lines.push(`${untracked} timer(s) set before tracking began`);
  return lines;
}

function describe(handle) {
  if (handle instanceof ChildProcess) return `child process ${handle.pid}: ${handle.spawnargs.join(' ').slice(0, 200)}`;
  if (handle instanceof Server) {
    const address = handle.address();
    return `server listening on ${typeof address === 'string' ? address : `${address?.address}:${address?.port}`}`;
  }
  if (handle instanceof Socket) {
    if (handle.remotePort === undefined) return `socket or pipe${handle.connecting ? ', connecting' : ''}`;
    return `socket ${handle.localAddress}:${handle.localPort} -> ${handle.remoteAddress}:${handle.remotePort}`;
  }
  return handle?.constructor?.name ?? typeof handle;
}

/** ", made in <suite> at <frames>", or '' for a handle made before tracking began. */
function origin(entry) {
  if (!entry) return '';
  const frames = (entry.created.stack ?? '')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().replace(/^at /, ''))
    .filter((frame) => !/(^|\()node:/.test(frame) && !frame.includes('leftover-handles.mjs'));
  return `, made in ${entry.suite} at ${frames.slice(0, 6).join(' < ') || '(node internals only)'}`;
}

/**
 * Waits for the process to hold nothing but its stdio. A socket being closed takes a turn or two of
 * the loop, and a timer a suite left may run out by itself (as jest would wait for it): what is
 * still open after `warnAfterMs` is named on stderr, and what is still open after `failAfterMs`
 * fails the run, named, where jest would have waited for ever.
 */
export async function assertNoLeftoverHandles({ warnAfterMs = 5000, failAfterMs = 60_000 } = {}) {
  const started = Date.now();
  let warned = false;
  let leftovers = describeLeftoverHandles();
  while (leftovers.length > 0 && Date.now() - started < failAfterMs) {
    if (!warned && Date.now() - started >= warnAfterMs) {
      warned = true;
      process.stderr.write(`[teardown] still open ${warnAfterMs} ms after the last suite; waiting up to ${failAfterMs} ms for them to close:\n  ${leftovers.join('\n  ')}\n`);
    }
    await sleep(100);
    leftovers = describeLeftoverHandles();
  }
  if (leftovers.length > 0) {
    throw new Error(`open handle(s) left ${failAfterMs} ms after every suite finished; each would keep jest from exiting:\n  ${leftovers.join('\n  ')}`);
  }
  if (warned) process.stderr.write(`[teardown] all closed ${Date.now() - started} ms after the last suite\n`);
}
