import ts from 'typescript';
import fs from 'node:fs';
import { execSync } from 'node:child_process';
const files = execSync("git ls-files 'src/**/*.ts' 'src/*.ts'", { encoding: 'utf8' })
  .trim()
  .split('\n')
  .filter((f) => fs.existsSync(f));
const out = [];
let casts = 0,
  asError = 0,
  lines = 0;
const castsBy = {};
for (const f of files) {
  const text = fs.readFileSync(f, 'utf8');
  lines += text.split('\n').length;
  const sf = ts.createSourceFile(f, text, ts.ScriptTarget.Latest, true);
  const visit = (n) => {
    if (
      ts.isFunctionDeclaration(n) ||
      ts.isMethodDeclaration(n) ||
      ts.isArrowFunction(n) ||
      ts.isFunctionExpression(n) ||
      ts.isConstructorDeclaration(n) ||
      ts.isGetAccessor(n)
    ) {
      const a = sf.getLineAndCharacterOfPosition(n.getStart()).line,
        b = sf.getLineAndCharacterOfPosition(n.getEnd()).line;
      const name = n.name?.getText?.() ?? (ts.isVariableDeclaration(n.parent) ? n.parent.name.getText() : '<anon>');
      if (b - a + 1 > 80) out.push([b - a + 1, `${f}:${a + 1} ${name}`]);
    }
    if (ts.isAsExpression(n) && !(ts.isTypeReferenceNode(n.type) && n.type.typeName.getText() === 'const')) {
      casts++;
      castsBy[f] = (castsBy[f] ?? 0) + 1;
      if (n.type.getText() === 'Error') asError++;
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
}
out.sort((x, y) => y[0] - x[0]);
for (const [n, w] of out) console.log(n, w);
console.log(
  `functions >80: ${out.length}; casts (as, not as const): ${casts} (as Error ${asError}); lines ${lines}; per 1000: ${((casts / lines) * 1000).toFixed(1)}`,
);
if (process.argv[2] === '-v')
  console.log(
    Object.entries(castsBy)
      .sort((a, b) => b[1] - a[1])
      .map(([f, n]) => `${n} ${f}`)
      .join('\n'),
  );
