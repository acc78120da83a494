import { parseEnv } from "@quanta/config";
import { startIngress } from "./server.js";

const env = parseEnv();
const ingress = await startIngress(env, { host: process.env.HOST ?? "127.0.0.1" });
// Tell a parent process (the rush, tests) which port we took.
process.send?.({ ready: "ingress", port: ingress.port, id: ingress.ingressId });

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    ingress.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
