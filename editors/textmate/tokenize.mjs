// Tokenise .cat files with the TextMate grammar the way VS Code does (vscode-textmate on the
// Oniguruma regex engine) and print, per file, every token whose scope is `invalid.*`.
// Usage: node tokenize.mjs FILE... ; exit 1 when a file has an invalid token.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");
const here = path.dirname(fileURLToPath(import.meta.url));
const wasm = fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm"));
await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
const registry = new vsctm.Registry({
  onigLib: Promise.resolve({
    createOnigScanner: (sources) => new oniguruma.OnigScanner(sources),
    createOnigString: (s) => new oniguruma.OnigString(s),
  }),
  loadGrammar: async () =>
    vsctm.parseRawGrammar(fs.readFileSync(path.join(here, "catopt.tmLanguage.json"), "utf8"), "catopt.tmLanguage.json"),
});
const grammar = await registry.loadGrammar("source.catopt");
let bad = 0;
const report = {};
for (const file of process.argv.slice(2)) {
  let state = vsctm.INITIAL;
  const invalid = [];
  const scopes = new Set();
  fs.readFileSync(file, "utf8").split("\n").forEach((line, i) => {
    const r = grammar.tokenizeLine(line, state);
    for (const t of r.tokens) {
      for (const s of t.scopes) scopes.add(s);
      if (t.scopes.some((s) => s.startsWith("invalid"))) {
        invalid.push(`${i + 1}:${t.startIndex + 1} ${JSON.stringify(line.slice(t.startIndex, t.endIndex))}`);
      }
    }
    state = r.ruleStack;
  });
  report[file] = { invalid, scopes: [...scopes].sort() };
  if (invalid.length) bad += 1;
}
console.log(JSON.stringify(report));
process.exit(bad ? 1 : 0);
