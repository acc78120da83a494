import { parseEnv } from "@quanta/config";
import { createTestWorld, type TestWorld } from "./world.js";
import { CallbackClient } from "@quanta/loadtest";
import { startIngress, type RunningIngress } from "@quanta/ingress";
import { startWorker, type RunningWorker } from "@quanta/worker";
import { startAdmin, type RunningAdmin } from "@quanta/admin";

/** The admin API beside a worker and an ingress, in this process, on a world of its own. */
export interface AdminStack {
  world: TestWorld;
  admin: RunningAdmin;
  ingress: RunningIngress;
  worker: RunningWorker;
  client: CallbackClient;
  /** The admin API's base URL. */
  base: string;
  close(): Promise<void>;
}

export async function startAdminStack(name: string, adminTokens: string, connections = 4): Promise<AdminStack> {
  const world = await createTestWorld(name, { env: { QUANTA_ADMIN_TOKENS: adminTokens, QUANTA_ADMIN_PORT: "0" } });
  const env = parseEnv(world.env);
  const admin = await startAdmin(env);
  const worker = await startWorker(env);
  const ingress = await startIngress(env);
  const client = new CallbackClient(`http://127.0.0.1:${ingress.port}`, world.acquirerId, world.secret, connections);
  return {
    world,
    admin,
    ingress,
    worker,
    client,
    base: `http://127.0.0.1:${admin.port}`,
    close: async () => {
      await client.close();
      await ingress.close();
      await worker.close();
      await admin.close();
      await world.cleanup();
    },
  };
}
