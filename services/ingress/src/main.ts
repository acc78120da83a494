import { parseEnv } from "@quanta/config";
import { closeOnSignal } from "@quanta/telemetry";
import { startIngress } from "./server.js";

const env = parseEnv();
const ingress = await startIngress(env, { host: process.env.HOST ?? "127.0.0.1" });
// Tell a parent process (the rush, tests) which port we took.
process.send?.({ ready: "ingress", port: ingress.port, id: ingress.ingressId });

closeOnSignal(() => ingress.close());
