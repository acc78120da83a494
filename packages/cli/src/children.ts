import type { ChildProcess } from "node:child_process";

/**
 * Every process the CLI starts (services, private Redis nodes), killed when the CLI exits however
 * it exits: a rush or a bench stopped with Ctrl-C must not leave redis-server or Node processes
 * behind. The normal path stops them itself; this is the backstop (SIGKILL, synchronous, in the
 * 'exit' handler), with SIGINT and SIGTERM turned into an exit so that the handler runs.
 */
const children = new Set<ChildProcess>();
let hooked = false;

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once("exit", () => children.delete(child));
  if (!hooked) {
    hooked = true;
    process.once("exit", () => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    });
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      if (process.listenerCount(signal) === 0)
        process.once(signal, () => process.exit(signal === "SIGINT" ? 130 : 143));
    }
  }
  return child;
}
