import { Pool } from "undici";
import { ACQUIRER_HEADER, SIGNATURE_HEADER, sign } from "@quanta/contract";

/** A signed HTTP client for the callback API, over a bounded keep-alive pool. */
export interface Answer {
  status: number;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
}

export class CallbackClient {
  private readonly pool: Pool;

  constructor(
    baseUrl: string,
    private readonly acquirerId: string,
    private readonly secret: string,
    connections: number,
  ) {
    this.pool = new Pool(baseUrl, {
      connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    });
  }

  async postPayment(body: string, secret = this.secret): Promise<Answer> {
    return this.post("/v1/callbacks/payment", body, secret);
  }

  async postRefund(body: string, secret = this.secret): Promise<Answer> {
    return this.post("/v1/callbacks/refund", body, secret);
  }

  private async post(path: string, body: string, secret: string): Promise<Answer> {
    const t = Math.floor(Date.now() / 1000);
    const res = await this.pool.request({
      path,
      method: "POST",
      headers: {
        "content-type": "application/json",
        [ACQUIRER_HEADER]: this.acquirerId,
        [SIGNATURE_HEADER]: sign(secret, t, body),
      },
      body,
    });
    return { status: res.statusCode, body: await readBody(res.body), headers: res.headers };
  }

  async getAttempt(txnId: string): Promise<Answer> {
    const t = Math.floor(Date.now() / 1000);
    const path = `/v1/attempts/${txnId}`;
    const res = await this.pool.request({
      path,
      method: "GET",
      headers: { [ACQUIRER_HEADER]: this.acquirerId, [SIGNATURE_HEADER]: sign(this.secret, t, `GET ${path}`) },
    });
    return { status: res.statusCode, body: await readBody(res.body), headers: res.headers };
  }

  /** Raw request for hostile-input tests: any headers, any bytes. */
  async raw(
    method: "GET" | "POST",
    path: string,
    headers: Record<string, string>,
    body?: string | Buffer,
  ): Promise<Answer> {
    const res = await this.pool.request({ path, method, headers, ...(body === undefined ? {} : { body }) });
    return { status: res.statusCode, body: await readBody(res.body), headers: res.headers };
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}

async function readBody(body: { text(): Promise<string> }): Promise<unknown> {
  const text = await body.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
