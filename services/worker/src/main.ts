import { parseEnv } from "@quanta/config";
import { closeOnSignal } from "@quanta/telemetry";
import { startWorker } from "./server.js";

const worker = await startWorker(parseEnv());
process.send?.({ ready: "worker", port: worker.port, id: worker.workerId });

closeOnSignal(() => worker.close());
