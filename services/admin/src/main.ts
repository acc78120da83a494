import { parseEnv } from "@quanta/config";
import { closeOnSignal } from "@quanta/telemetry";
import { startAdmin } from "./server.js";

const admin = await startAdmin(parseEnv(), { host: process.env.HOST ?? "127.0.0.1" });
process.send?.({ ready: "admin", port: admin.port, id: "admin" });

closeOnSignal(() => admin.close());
