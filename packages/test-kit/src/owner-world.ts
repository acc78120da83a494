import { CampaignCache } from "@quanta/db";
import { createRedis, type QuantaRedis } from "@quanta/queue";
import { createTestWorld, type TestWorld } from "./world.js";

/**
 * A world as a worker's partition code meets it, for tests that drive that code directly: the
 * world (seed campaign), a Redis connection on it and a campaign cache already read. close()
 * disconnects and removes the world.
 */
export interface OwnerWorld {
  world: TestWorld;
  redis: QuantaRedis;
  campaigns: CampaignCache;
  close(): Promise<void>;
}

export async function createOwnerWorld(name: string, partitions: number): Promise<OwnerWorld> {
  const world = await createTestWorld(name, { partitions });
  const redis = createRedis(world.env.REDIS_URL!, `${name}-test`);
  const campaigns = new CampaignCache(world.db.kysely, () => undefined, 60_000);
  try {
    await campaigns.refresh();
  } catch (error) {
    redis.disconnect();
    await world.cleanup();
    throw error;
  }
  return {
    world,
    redis,
    campaigns,
    close: async () => {
      redis.disconnect();
      await world.cleanup();
    },
  };
}
