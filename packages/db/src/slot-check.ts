import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";
import type { InvariantCheck } from "./verify.js";

type SlotProblem =
  "regranted" | "granted_while_held" | "released_with_voucher" | "released_against_policy" | "kept_against_policy";

const PROBLEM_TEXT: Record<SlotProblem, string> = {
  regranted: "granted again although the policy keeps the slot",
  granted_while_held: "granted again before the previous voucher was returned and its slot released",
  released_with_voucher: "had a slot released while still holding the voucher",
  released_against_policy: "had a slot released although the policy keeps it",
  kept_against_policy: "had a voucher returned without its slot released although the policy releases it",
};

/**
 * I2 per (activity, payer), read by the campaign's refund slot policy rather than through the
 * partial unique index it is meant to back up: the index only sees rows whose slot is not
 * released, so a slot released behind the policy's back (or a second grant decided before the
 * first voucher came back) passes the index and any recount of it. Grants are ordered by
 * decision time, the time the worker saw the payer's holdings, so "before the next grant" is
 * what the worker could have known.
 */
export async function checkSlots(db: Kysely<Database>, campaignId: string): Promise<InvariantCheck> {
  const policy = (
    await sql<{ refund_slot: "kept" | "released" }>`select refund_slot from campaigns where id = ${campaignId}`.execute(
      db,
    )
  ).rows[0]?.refund_slot;
  if (policy === undefined) return { id: "I2", ok: false, detail: `campaign ${campaignId} not found` };
  const problems = await sql<{ problem: SlotProblem; payers: string; sample: string }>`
    with g as materialized (
      select activity_id, payer_id, txn_id, voucher_returned_at, slot_released_at,
             lead(decided_at) over w as next_decided_at, lead(txn_id) over w as next_txn_id
        from attempts where campaign_id = ${campaignId} and status = 'granted'
      window w as (partition by activity_id, payer_id order by decided_at, acquirer_id, txn_id))
    select p.problem, count(distinct g.activity_id || '/' || g.payer_id) as payers,
           min(g.activity_id || '/' || g.payer_id || ': ' || g.txn_id || coalesce(' then ' || g.next_txn_id, '')) as sample
      from g cross join lateral (values
             ('regranted', ${policy}::text = 'kept' and g.next_decided_at is not null),
             ('granted_while_held', ${policy}::text = 'released' and g.next_decided_at is not null
                and not coalesce(g.voucher_returned_at <= g.next_decided_at and g.slot_released_at <= g.next_decided_at, false)),
             ('released_with_voucher', g.slot_released_at is not null and g.voucher_returned_at is null),
             ('released_against_policy', ${policy}::text = 'kept' and g.slot_released_at is not null),
             ('kept_against_policy', ${policy}::text = 'released' and g.voucher_returned_at is not null and g.slot_released_at is null)
           ) as p(problem, broken)
     where p.broken
     group by p.problem
     order by p.problem`.execute(db);
  if (problems.rows.length > 0) {
    return {
      id: "I2",
      ok: false,
      detail: `policy ${policy}: ${problems.rows.map((p) => `${Number(p.payers)} payers ${PROBLEM_TEXT[p.problem]}, e.g. ${p.sample}`).join("; ")}`,
    };
  }
  const counts = (
    await sql<{ grants: string; payers: string; released: string }>`
      select count(*) as grants, count(distinct activity_id || '/' || payer_id) as payers, count(slot_released_at) as released
        from attempts where campaign_id = ${campaignId} and status = 'granted'`.execute(db)
  ).rows[0]!;
  const grants = Number(counts.grants);
  const regrants = grants - Number(counts.payers);
  return {
    id: "I2",
    ok: true,
    detail:
      policy === "kept"
        ? `policy kept: ${grants.toLocaleString("en-US")} grants, none to a payer already granted in the activity, no slot released`
        : `policy released: ${grants.toLocaleString("en-US")} grants, ${Number(counts.released)} slots released by refunds, ` +
          `${regrants} grants to a payer again, each after the previous voucher was returned and its slot released`,
  };
}
