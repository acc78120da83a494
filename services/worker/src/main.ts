import { parseEnv } from "@quanta/config";
import { startWorker } from "./server.js";

const worker = await startWorker(parseEnv());
process.send?.({ ready: "worker", port: worker.port, id: worker.workerId });

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    worker.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
