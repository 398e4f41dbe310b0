// ESLint rule `patchbay/no-type-cycle`: import cycles that go through `import type`.
//
// import-x/no-cycle finds cycles of runtime imports (the kind that breaks module loading) but skips
// type-only imports by design. A cycle through types is still a layering knot (issue 10: "no import
// cycles", e.g. server/app.ts ↔ its routes through `AppDeps`), so this rule builds the whole import
// graph of the linted files, types included, and reports each import that closes a cycle with at
// least one type-only edge (pure runtime cycles are left to import-x/no-cycle, reported once).
import { readFileSync } from 'node:fs';
import path from 'node:path';

// `import … from 'x'`, `import type … from 'x'`, `export … from 'x'`, `import 'x'`. Comments and
// strings that merely look like imports are rare in this code base; a false edge shows up as a
// report that names the files, easy to check.
const IMPORT = /^\s*(import|export)\s+(type\s+)?([^'";]*?)\s*(?:from\s*)?['"]([^'"]+)['"]/gm;

/** @param {string} text */
function importsOf(text) {
  const out = [];
  for (const m of text.matchAll(IMPORT)) {
    const [all, kw, typeKw, clause, source] = m;
    if (kw === 'export' && !/\bfrom\b/.test(all)) continue; // `export const x = 'y'`
    const named = /^\{([^}]*)\}$/.exec(clause.trim())?.[1];
    const specifiers =
      named
        ?.split(',')
        .map((s) => s.trim())
        .filter(Boolean) ?? [];
    const onlyTypes = Boolean(typeKw) || (specifiers.length > 0 && specifiers.every((s) => s.startsWith('type ')));
    out.push({ source, onlyTypes });
  }
  return out;
}

/**
 * @param {{ resolve: (spec: string, from: string) => { found: boolean; path?: string | null } }} resolver
 * @param {(file: string) => boolean} inScope
 */
function createGraph(resolver, inScope) {
  /** @type {Map<string, Array<{ to: string; onlyTypes: boolean }>>} */
  const edges = new Map();
  const visit = (file) => {
    if (edges.has(file)) return;
    const list = [];
    edges.set(file, list);
    let text;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return;
    }
    for (const imp of importsOf(text)) {
      if (!imp.source.startsWith('.') && !imp.source.startsWith('patchbay/')) continue;
      const r = resolver.resolve(imp.source, file);
      if (!r.found || !r.path || !inScope(r.path)) continue;
      // Several imports of one file: the edge is type-only when every one of them is.
      const have = list.find((e) => e.to === r.path);
      if (have) have.onlyTypes &&= imp.onlyTypes;
      else list.push({ to: r.path, onlyTypes: imp.onlyTypes });
      visit(r.path);
    }
  };
  return { edges, visit };
}

/** Tarjan's strongly connected components → file → component id (only components of size > 1). */
function components(edges) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const comp = new Map();
  let next = 0;
  const strong = (v) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    on.add(v);
    for (const { to } of edges.get(v) ?? []) {
      if (!idx.has(to)) {
        strong(to);
        low.set(v, Math.min(low.get(v), low.get(to)));
      } else if (on.has(to)) low.set(v, Math.min(low.get(v), idx.get(to)));
    }
    if (low.get(v) === idx.get(v)) {
      const members = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        members.push(w);
      } while (w !== v);
      if (members.length > 1) {
        const id = next++;
        for (const m of members) comp.set(m, id);
      }
    }
  };
  for (const v of edges.keys()) if (!idx.has(v)) strong(v);
  return comp;
}

/** A shortest path from `from` to `to` inside one component (BFS), as a list of files. */
function pathWithin(edges, comp, from, to) {
  const id = comp.get(from);
  const prev = new Map([[from, undefined]]);
  const queue = [from];
  while (queue.length > 0) {
    const v = queue.shift();
    if (v === to) break;
    for (const { to: w } of edges.get(v) ?? []) {
      if (comp.get(w) === id && !prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  const out = [];
  for (let v = to; v !== undefined; v = prev.get(v)) out.unshift(v);
  return out;
}

/** root → graph: built once per process (an editor's long-lived ESLint sees the graph of its start). */
const graphs = new Map();

/** @type {import('eslint').Rule.RuleModule} */
export const noTypeCycle = {
  meta: {
    type: 'problem',
    docs: { description: 'disallow import cycles that pass through type-only imports' },
    schema: [],
    messages: { cycle: 'Import cycle through type-only imports: {{route}}' },
  },
  create(context) {
    const settings = context.settings['patchbay/no-type-cycle'];
    if (!settings) throw new Error("patchbay/no-type-cycle: set settings['patchbay/no-type-cycle'] = { resolver, root }");
    const { resolver, root } = settings;
    const inScope = (f) => f.startsWith(root + path.sep) && !f.includes(`${path.sep}node_modules${path.sep}`);
    // One graph per lint run and root.
    let graph = graphs.get(root);
    if (!graph) graphs.set(root, (graph = createGraph(resolver, inScope)));
    const file = context.physicalFilename;
    graph.visit(file);
    const comp = components(graph.edges);
    if (!comp.has(file)) return {};
    const rel = (f) => path.relative(root, f);
    const check = (node) => {
      const source = node.source?.value;
      if (typeof source !== 'string') return;
      const r = resolver.resolve(source, file);
      if (!r.found || !r.path || comp.get(r.path) !== comp.get(file)) return;
      const back = pathWithin(graph.edges, comp, r.path, file);
      const route = [file, ...back];
      const typeEdge = route.slice(0, -1).some((f, i) => graph.edges.get(f)?.some((e) => e.to === route[i + 1] && e.onlyTypes));
      if (!typeEdge) return; // a runtime cycle: import-x/no-cycle reports it
      context.report({ node, messageId: 'cycle', data: { route: route.map(rel).join(' → ') } });
    };
    return { ImportDeclaration: check, ExportNamedDeclaration: check, ExportAllDeclaration: check };
  },
};
