// The rooms of src/ and which rooms each may import (docs/architecture.md, "Layering").
//
// eslint.config.js turns this table into `import-x/no-restricted-paths` zones, so an import that
// points anywhere not listed here fails `npm run lint`; test/app/lint-layers.test.ts checks the
// rule on deliberate bad imports and that the table in docs/architecture.md says the same.
// Type-only imports count too: a layer that needs a type from above it is a knot in the plan.

/** @type {Record<string, string[]>} room → rooms it may import (besides itself). */
export const LAYERS = {
  core: [],
  daily: ['core'],
  voice: ['core'],
  emulator: ['core', 'daily', 'voice'],
  sdk: ['core', 'daily', 'voice'],
  call: ['core'],
  workers: ['core', 'voice'],
  'workers/child': ['core', 'daily', 'voice', 'sdk', 'workers', 'emulator/client'],
  'workers/parent': ['core', 'daily', 'call', 'workers'],
  admission: ['core', 'daily', 'call', 'workers', 'workers/parent'],
  fleet: ['core', 'daily', 'call', 'workers', 'workers/parent', 'admission'],
  records: ['core', 'call', 'admission'],
  server: ['core', 'daily', 'call', 'workers/parent', 'admission', 'records', 'fleet'],
  app: ['core', 'daily', 'voice', 'emulator', 'call', 'workers', 'workers/parent', 'admission', 'fleet', 'records', 'server'],
  testing: ['core', 'daily', 'voice', 'emulator', 'sdk', 'call', 'workers', 'workers/parent', 'admission', 'records', 'server', 'app'],
  cli: ['core', 'daily', 'app'],
};

/**
 * `import-x/no-restricted-paths` zones for LAYERS, as absolute globs under `srcDir` (an absolute
 * path). A room is its folder; `workers` (the protocol) is the files directly in `src/workers/`,
 * whose `parent/` and `child/` are rooms of their own. An entry like `emulator/client` allows one
 * file of another room.
 * @param {string} srcDir
 */
export function layerZones(srcDir) {
  const rooms = Object.keys(LAYERS);
  const filesOf = (room) => (rooms.some((r) => r.startsWith(`${room}/`)) ? `${srcDir}/${room}/*.ts` : `${srcDir}/${room}/**`);
  const zones = [];
  for (const [room, allowed] of Object.entries(LAYERS)) {
    for (const other of rooms) {
      if (other === room || allowed.includes(other)) continue;
      const files = allowed.filter((a) => a.startsWith(`${other}/`) && !rooms.includes(a));
      zones.push({
        target: filesOf(room),
        from: filesOf(other),
        ...(files.length ? { except: files.map((f) => `${srcDir}/${f}.{ts,js}`) } : {}),
        message: `Layering: src/${room} may import ${allowed.map((a) => `src/${a}`).join(', ') || 'nothing of patchbay'} (scripts/layers.js; docs/architecture.md).`,
      });
    }
  }
  return zones;
}
