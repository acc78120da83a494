import { fileURLToPath } from "node:url";
import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";

/**
 * The architecture's import rules in eslint.config.js fail where they should: linting a few lines
 * as if they sat in a given file of the tree.
 */
const eslint = new ESLint({ cwd: fileURLToPath(new URL(".", import.meta.url)) });

async function restricted(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return result!.messages.filter((m) => m.ruleId === "no-restricted-imports").map((m) => m.message);
}

describe("import boundaries", () => {
  it("the domain imports no IO and no other quanta package; node:crypto is allowed", async () => {
    expect(await restricted("packages/domain/src/x.ts", 'import pg from "pg";\nexport const p = pg;\n')).toHaveLength(
      1,
    );
    expect(
      await restricted(
        "packages/domain/src/x.ts",
        'import { readFileSync } from "node:fs";\nexport const r = readFileSync;\n',
      ),
    ).toHaveLength(1);
    expect(
      await restricted(
        "packages/domain/src/x.ts",
        'import { connect } from "@quanta/db";\nexport const c = connect;\n',
      ),
    ).toHaveLength(1);
    expect(
      await restricted(
        "packages/domain/src/x.ts",
        'import { createHash } from "node:crypto";\nexport const h = createHash;\n',
      ),
    ).toEqual([]);
  });

  it("a service imports no other service and not the CLI; a package imports no service", async () => {
    expect(
      await restricted(
        "services/ingress/src/x.ts",
        'import { startWorker } from "@quanta/worker";\nexport const s = startWorker;\n',
      ),
    ).toHaveLength(1);
    expect(
      await restricted("services/ingress/src/x.ts", 'import { rush } from "@quanta/cli";\nexport const r = rush;\n'),
    ).toHaveLength(1);
    expect(
      await restricted(
        "services/ingress/src/x.ts",
        'import { connect } from "@quanta/db";\nexport const c = connect;\n',
      ),
    ).toEqual([]);
    expect(
      await restricted(
        "packages/db/src/x.ts",
        'import { startIngress } from "@quanta/ingress";\nexport const s = startIngress;\n',
      ),
    ).toHaveLength(1);
  });

  it("production code never imports the test kit; tests and the kit itself may", async () => {
    const kit = 'import { createTestWorld } from "@quanta/test-kit";\nexport const w = createTestWorld;\n';
    for (const file of ["packages/db/src/x.ts", "packages/cli/src/x.ts", "services/worker/src/x.ts"]) {
      const messages = await restricted(file, kit);
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatch(/never imports the test kit/);
    }
    expect(await restricted("packages/db/test/x.test.ts", kit)).toEqual([]);
    expect(await restricted("packages/db/src/x.test.ts", kit)).toEqual([]);
    expect(await restricted("services/worker/src/x.test.ts", kit)).toEqual([]);
    expect(
      await restricted(
        "packages/test-kit/src/x.ts",
        'import { startWorker } from "@quanta/worker";\nexport const s = startWorker;\n',
      ),
    ).toEqual([]);
  });
});
