import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import {
  ACQUIRER_HEADER,
  SIGNATURE_HEADER,
  errorBody,
  parsePaymentBody,
  verifySignature,
  type ErrorCode,
} from "@quanta/contract";
import type { Payment } from "@quanta/domain";

/**
 * The front half of the contract, shared by both baselines: content type,
 * 16 KiB limit, acquirer, HMAC, replay window, body. What happens after
 * (nothing, or one Postgres transaction) is the baseline's `decide`.
 */
export type Decide = (
  acquirerId: string,
  payment: Payment,
  receivedAtMs: number,
) => Promise<{ status: number; body: unknown }>;

const STATUS: Partial<Record<ErrorCode, number>> = {
  invalid_body: 400,
  unknown_acquirer: 401,
  bad_signature: 401,
  stale_timestamp: 401,
  body_too_large: 413,
  unsupported_media_type: 415,
};

export function contractServer(secrets: ReadonlyMap<string, string>, decide: Decide): FastifyInstance {
  const app = Fastify({ bodyLimit: 16 * 1024, logger: false });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "buffer", bodyLimit: 16 * 1024 }, (_r, body, done) =>
    done(null, body),
  );
  const fail = (reply: FastifyReply, code: ErrorCode) => reply.code(STATUS[code] ?? 400).send(errorBody(code));
  app.setErrorHandler((error: { code?: string }, _request, reply) => {
    if (error.code === "FST_ERR_CTP_BODY_TOO_LARGE") return fail(reply, "body_too_large");
    if (error.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") return fail(reply, "unsupported_media_type");
    return reply.code(503).header("retry-after", "1").send(errorBody("overloaded"));
  });
  app.get("/healthz", async () => ({ status: "ok" }));
  app.post("/v1/callbacks/payment", async (request: FastifyRequest, reply: FastifyReply) => {
    const receivedAtMs = Date.now();
    const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const acquirerId = request.headers[ACQUIRER_HEADER];
    const secret = typeof acquirerId === "string" ? secrets.get(acquirerId) : undefined;
    if (typeof acquirerId !== "string" || !secret) return fail(reply, "unknown_acquirer");
    const header = request.headers[SIGNATURE_HEADER];
    const check = verifySignature(typeof header === "string" ? header : undefined, secret, raw, receivedAtMs);
    if (!check.ok) return fail(reply, check.code);
    const parsed = parsePaymentBody(raw);
    if (!parsed.ok) return reply.code(400).send(errorBody("invalid_body", parsed.message, parsed.field));
    const answer = await decide(acquirerId, parsed.payment, receivedAtMs);
    return reply.code(answer.status).send(answer.body);
  });
  return app;
}
