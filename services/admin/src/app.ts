import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { sql, type Kysely } from "kysely";
import { CampaignFileError, parseCampaignFile } from "@quanta/domain";
import {
  NotFound,
  campaignStatus,
  insertCampaign,
  readAudit,
  replaceActivityMerchants,
  setActivityPaused,
  settlement,
  settlementCsv,
  type CampaignLoadRefusal,
  type Database,
} from "@quanta/db";
import { registerOpsRoutes, type Logger } from "@quanta/telemetry";
import { grants, type AdminScope } from "./scopes.js";
import type { AdminTokens } from "./tokens.js";

/**
 * The operators' API, on its own port with its own bearer tokens (never an acquirer's secret):
 * campaign status, load a campaign, pause and resume an activity (emergency stop), replace an
 * activity's merchant list, settlement, and the audit log. Each route needs a scope (scopes.ts)
 * that the caller's token must hold. Every change is written with its audit record in one
 * transaction. Errors carry stable codes: unauthorized, insufficient_scope, not_found,
 * invalid_body, conflict, campaign_overlap, override_not_loaded.
 */
export interface AdminDeps {
  db: Kysely<Database>;
  tokens: AdminTokens;
  partitionCount: number;
  log: Logger;
}

const ID = /^[A-Za-z0-9_-]{1,64}$/;
const BODY_LIMIT_BYTES = 4 * 1024 * 1024; // a campaign file with a county's merchant list
const MERCHANTS_MAX = 200_000;
const AUDIT_LIMIT_MAX = 1_000;

declare module "fastify" {
  interface FastifyRequest {
    actor: string;
  }
  interface FastifyContextConfig {
    /** What the caller's token must hold; none named: administer. */
    scope?: AdminScope;
  }
}

export function buildAdminApp(deps: AdminDeps): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: BODY_LIMIT_BYTES });
  app.decorateRequest("actor", "");
  registerOpsRoutes(app, { ready: () => sql`select 1`.execute(deps.db) });
  app.register(async (api) => {
    api.addHook("onRequest", authorize(deps));
    campaignRoutes(api, deps);
    activityRoutes(api, deps);
    reportRoutes(api, deps);
  });
  app.setNotFoundHandler((_request: FastifyRequest, reply: FastifyReply) =>
    reply.code(404).send({ error: { code: "not_found" } }),
  );
  return app;
}

/** Who the bearer token names, and whether its scope grants what the route needs (401, 403). */
function authorize(deps: AdminDeps) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const who = deps.tokens.whoIs(request.headers.authorization);
    if (!who)
      return reply
        .code(401)
        .header("www-authenticate", "Bearer")
        .send({ error: { code: "unauthorized" } });
    request.actor = who.name;
    const needed = request.routeOptions.config.scope ?? "administer";
    if (!grants(who.scope, needed)) {
      // Not audited: like every refused request it changed nothing; the log keeps the attempt.
      deps.log.warn(
        { actor: who.name, scope: who.scope, needed, method: request.method, route: request.routeOptions.url },
        "admin request refused: insufficient scope",
      );
      return reply
        .code(403)
        .header("www-authenticate", `Bearer error="insufficient_scope", scope="${needed}"`)
        .send({
          error: {
            code: "insufficient_scope",
            scope: needed,
            message: `${who.name} holds ${who.scope}; this needs ${needed}`,
          },
        });
    }
  };
}

/** Campaign status, and loading a campaign file (audited with the load). */
function campaignRoutes(api: FastifyInstance, deps: AdminDeps): void {
  api.get<{ Params: { campaignId: string } }>(
    "/admin/v1/campaigns/:campaignId",
    { config: { scope: "read" } },
    async (request, reply) => guard(reply, async () => campaignStatus(deps.db, checkId(request.params.campaignId))),
  );

  api.post("/admin/v1/campaigns", { config: { scope: "administer" } }, async (request, reply) =>
    guard(reply, async () => {
      const campaign = parseCampaignFile(request.body);
      const load = await insertCampaign(deps.db, campaign, deps.partitionCount, request.actor);
      if (!load.loaded) return reply.code(409).send({ error: loadRefusalBody(load.refusal) });
      deps.log.info({ actor: request.actor, campaign: campaign.id, overrides: campaign.overrides }, "campaign loaded");
      reply.code(201);
      return { loaded: campaign.id };
    }),
  );
}

/** The emergency stop (pause, resume) and an activity's merchant list. */
function activityRoutes(api: FastifyInstance, deps: AdminDeps): void {
  for (const [verb, paused] of [
    ["pause", true],
    ["resume", false],
  ] as const) {
    api.post<{ Params: { campaignId: string; activityId: string } }>(
      `/admin/v1/campaigns/:campaignId/activities/:activityId/${verb}`,
      { config: { scope: "operate" } },
      async (request, reply) =>
        guard(reply, async () => {
          const { campaignId, activityId } = request.params;
          const changed = await setActivityPaused(
            deps.db,
            checkId(campaignId),
            checkId(activityId),
            paused,
            request.actor,
          );
          deps.log.warn({ actor: request.actor, campaignId, activityId, paused, changed }, `activity ${verb}`);
          return { campaignId, activityId, paused, changed };
        }),
    );
  }

  api.put<{ Params: { campaignId: string; activityId: string }; Body: { merchants?: unknown } }>(
    "/admin/v1/campaigns/:campaignId/activities/:activityId/merchants",
    { config: { scope: "administer" } },
    async (request, reply) =>
      guard(reply, async () => {
        const merchants = request.body?.merchants;
        if (
          !Array.isArray(merchants) ||
          merchants.length > MERCHANTS_MAX ||
          !merchants.every((m) => typeof m === "string" && ID.test(m))
        ) {
          throw new BadRequest(`merchants must be an array of at most ${MERCHANTS_MAX} ids of [A-Za-z0-9_-]{1,64}`);
        }
        const { campaignId, activityId } = request.params;
        return {
          campaignId,
          activityId,
          ...(await replaceActivityMerchants(
            deps.db,
            checkId(campaignId),
            checkId(activityId),
            merchants as string[],
            request.actor,
          )),
        };
      }),
  );
}

/** Settlement (JSON or CSV) and the audit log. */
function reportRoutes(api: FastifyInstance, deps: AdminDeps): void {
  api.get<{ Params: { campaignId: string }; Querystring: { format?: string } }>(
    "/admin/v1/campaigns/:campaignId/settlement",
    { config: { scope: "read" } },
    async (request, reply) =>
      guard(reply, async () => {
        const s = await settlement(deps.db, checkId(request.params.campaignId));
        if (request.query.format === "csv") {
          reply.header("content-type", "text/csv; charset=utf-8");
          return settlementCsv(s);
        }
        return s;
      }),
  );

  api.get<{ Querystring: { limit?: string } }>(
    "/admin/v1/audit",
    { config: { scope: "read" } },
    async (request, reply) =>
      guard(reply, async () => ({
        records: await readAudit(
          deps.db,
          Math.min(AUDIT_LIMIT_MAX, Math.max(1, Number(request.query.limit ?? 100) || 100)),
        ),
      })),
  );
}

class BadRequest extends Error {}

/** campaign_exists keeps the code the API answered before other refusals existed: conflict. */
function loadRefusalBody(refusal: CampaignLoadRefusal): Record<string, unknown> {
  switch (refusal.code) {
    case "campaign_exists":
      return { code: "conflict", message: refusal.message };
    case "override_not_loaded":
      return { code: refusal.code, message: refusal.message, campaignIds: refusal.campaignIds };
    case "campaign_overlap":
      return {
        code: refusal.code,
        message: refusal.message,
        overlaps: refusal.overlaps.map((o) => ({
          campaignId: o.campaignId,
          window: { start: new Date(o.startMs).toISOString(), end: new Date(o.endMs).toISOString() },
          merchantCount: o.merchantCount,
          merchants: o.merchants,
        })),
      };
  }
}

function checkId(id: string): string {
  if (!ID.test(id)) throw new BadRequest(`${id.slice(0, 70)} is not an id of [A-Za-z0-9_-]{1,64}`);
  return id;
}

async function guard<T>(reply: FastifyReply, work: () => Promise<T>): Promise<T | FastifyReply> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof NotFound)
      return reply.code(404).send({ error: { code: "not_found", message: error.message } });
    if (error instanceof CampaignFileError || error instanceof BadRequest) {
      return reply.code(400).send({ error: { code: "invalid_body", message: error.message } });
    }
    throw error;
  }
}
