// Fails when src/gen is not what `npm run generate` makes from proto/ now:
// generates into a temporary directory with the same template and plugin
// (buf on PATH, protoc-gen-es from node_modules) and compares every file.
//
//   node scripts/check-generated.mjs      (npm run check:generated)
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const checkedIn = path.join(root, "src", "gen");
const temp = mkdtempSync(path.join(tmpdir(), "tributary-ts-gen-"));

function files(dir, prefix = "") {
  return readdirSync(dir)
    .flatMap((name) => {
      const full = path.join(dir, name);
      return statSync(full).isDirectory() ? files(full, `${prefix}${name}/`) : [`${prefix}${name}`];
    })
    .sort();
}

try {
  try {
    execFileSync("buf", ["generate", "--template", "buf.gen.yaml", "--output", temp], {
      cwd: root,
      stdio: ["ignore", "inherit", "inherit"],
    });
  } catch (error) {
    console.error(`buf generate failed (is buf installed? dev/setup installs it from npm @bufbuild/buf): ${error.message}`);
    process.exitCode = 2;
  }
  if (process.exitCode === undefined) compare();
} finally {
  rmSync(temp, { recursive: true, force: true });
}

function compare() {
  const fresh = path.join(temp, "src", "gen");
  const want = files(fresh);
  const have = files(checkedIn);
  const stale = [];
  for (const name of new Set([...want, ...have])) {
    if (!want.includes(name)) stale.push(`${name}: not generated from proto/ any more`);
    else if (!have.includes(name)) stale.push(`${name}: missing`);
    else if (readFileSync(path.join(fresh, name), "utf8") !== readFileSync(path.join(checkedIn, name), "utf8")) {
      stale.push(`${name}: differs`);
    }
  }
  if (stale.length > 0) {
    console.error(`src/gen is out of date with proto/; run \`npm run generate\` in client/typescript:\n  ${stale.join("\n  ")}`);
    process.exitCode = 1;
    return;
  }
  console.log(`src/gen is up to date (${have.length} files)`);
}
