import { config } from "./config.js";
import { tierIndex } from "./contract.js";

// The deployment under test and the seed campaign's tiers (for checking grants). Scripts call this
// in their init context: open() resolves the path against the script that calls it, and every
// script sits in loadtest/k6/.

/** @param {string} campaignText the seed campaign file's text (campaigns/qianan-2020-b2.json) */
export function target(campaignText) {
  return {
    baseUrl: config.baseUrl,
    acquirerId: config.acquirerId,
    secret: config.secret,
    tiers: tierIndex(JSON.parse(campaignText)),
  };
}
