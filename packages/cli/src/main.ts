#!/usr/bin/env node
import { parseEnv } from "@quanta/config";
import { CampaignFileError } from "@quanta/domain";
import { CampaignExistsError } from "@quanta/db";
import { UsageError, parseCliArgs } from "./cli-args.js";
import { COMMANDS, USAGE } from "./cli-commands.js";

/**
 * `quanta <command> [options]`: finds the command in cli-commands.ts and runs it. Exit codes: the
 * command's own (0, or 1 when what it checked does not hold), 2 for a usage error, a campaign
 * file or campaign that cannot be loaded, or anything thrown; no command at all prints the usage
 * and exits 2, --help prints it and exits 0.
 */
async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const command = COMMANDS.find((c) => c.name === name);
  if (command && "passThrough" in command) return command.run(rest);
  const { values, positionals } = parseCliArgs(rest);
  if (!name || values.help || name === "help") {
    console.log(USAGE);
    return name ? 0 : 2;
  }
  const env = parseEnv();
  if (!command) throw new UsageError(`unknown command ${name}`);
  return command.run({ values, positionals, env });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) console.error(`${error.message}\n\n${USAGE}`);
    else if (error instanceof CampaignFileError || error instanceof CampaignExistsError) console.error(error.message);
    else console.error(error);
    process.exit(2);
  },
);
