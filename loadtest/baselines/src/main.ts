import { parseEnv } from "@quanta/config";
import { parseAcquirerSecrets } from "@quanta/contract";
import { connectFromEnv, readCampaigns } from "@quanta/db";
import { orderCampaigns } from "@quanta/domain";
import { closeOnSignal } from "@quanta/telemetry";
import { contractServer } from "./contract-server.js";
import { directDecide, poolAllStock } from "./direct.js";
import { floorDecide } from "./floor.js";

/** `node dist/main.js floor|direct`: one baseline server on PORT, for `npm run bench`. */
const kind = process.argv[2];
if (kind !== "floor" && kind !== "direct") throw new Error("usage: main.js floor|direct");
const env = parseEnv();
const secrets = parseAcquirerSecrets(env.QUANTA_ACQUIRER_SECRETS ?? "");
const db = connectFromEnv(env, `quanta-${kind}`);
const campaigns = orderCampaigns(await readCampaigns(db.kysely));
if (kind === "direct") await poolAllStock(db.pool);
else await db.close();
const app = contractServer(secrets, kind === "floor" ? floorDecide(campaigns) : directDecide(db.pool, campaigns));
await app.listen({ port: env.PORT, host: "127.0.0.1" });
process.send?.({ ready: kind, port: (app.server.address() as { port: number }).port, id: kind });
closeOnSignal(async () => {
  await app.close();
  if (kind === "direct") await db.close();
});
