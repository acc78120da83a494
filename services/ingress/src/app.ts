import Fastify, { type FastifyInstance } from "fastify";
import { callbacksUnanswered, httpDuration, httpRequests, registerOpsRoutes } from "@quanta/telemetry";
import { sql } from "kysely";
import { fail } from "./answers.js";
import { handleGet } from "./attempt-route.js";
import type { IngressDeps } from "./ingress-deps.js";
import { handlePayment } from "./payment-route.js";
import { handleRefund } from "./refund-route.js";

export type { IngressDeps } from "./ingress-deps.js";

export const BODY_LIMIT_BYTES = 16 * 1024;

/**
 * The ingress's HTTP surface: the contract's three routes (payment-route.ts, refund-route.ts,
 * attempt-route.ts), the operators' /metrics, /healthz and /readyz, and the one error handler
 * that turns what Fastify or storage throws into the contract's answers.
 */
export function buildApp(deps: IngressDeps): FastifyInstance {
  const now = deps.now ?? Date.now;
  const app = Fastify({ bodyLimit: BODY_LIMIT_BYTES, logger: false, return503OnClosing: true });

  // The signature covers the raw bytes: keep them, parse JSON only after the HMAC checks out.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "buffer", bodyLimit: BODY_LIMIT_BYTES }, (_req, body, done) =>
    done(null, body),
  );

  app.setErrorHandler((error: { code?: string; statusCode?: number; message: string }, request, reply) => {
    switch (error.code) {
      case "outcome_unknown":
        // Something may have been accepted, and nothing will be decided on the strength of this
        // request alone: neither 503 ("nothing was accepted") nor 202 is true. Close the
        // connection unanswered, like a timeout: the acquirer resends, and the resend is answered
        // from what was stored (the same answer, or 409 for another body; docs/decisions/0012).
        deps.log.warn(
          { err: error, route: request.routeOptions.url },
          "outcome unknown; closing the callback unanswered",
        );
        callbacksUnanswered.inc({ route: request.routeOptions.url === "/v1/callbacks/refund" ? "refund" : "payment" });
        reply.hijack();
        request.raw.socket.destroy();
        return;
      case "FST_ERR_CTP_BODY_TOO_LARGE":
        return fail(reply, "body_too_large", `body is larger than ${BODY_LIMIT_BYTES} bytes`);
      case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      case "FST_ERR_CTP_INVALID_TYPE":
        return fail(reply, "unsupported_media_type", "content-type must be application/json");
      case "FST_ERR_CTP_EMPTY_JSON_BODY":
      case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
        return fail(reply, "invalid_body", error.message);
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return fail(reply, "invalid_body", error.message);
    }
    deps.log.error({ err: error }, "request failed");
    return fail(reply, "overloaded", "storage unavailable; nothing was accepted, retry later");
  });

  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    httpRequests.inc({ route, status: String(reply.statusCode) });
    httpDuration.observe({ route }, reply.elapsedTime / 1000);
  });

  registerOpsRoutes(app, {
    ready: () => Promise.all([sql`select 1`.execute(deps.db), deps.redis.ping()]),
    health: () => ({ holding: deps.waiter.size }),
  });

  app.post("/v1/callbacks/payment", async (request, reply) => handlePayment(deps, now, request, reply));
  app.post("/v1/callbacks/refund", async (request, reply) => handleRefund(deps, now, request, reply));
  app.get<{ Params: { txnId: string } }>("/v1/attempts/:txnId", async (request, reply) =>
    handleGet(deps, now, request, reply),
  );

  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: { code: "not_found" } }));
  return app;
}
