/** The rooms of src/ and which rooms each may import (layers.js). */
export declare const LAYERS: Record<string, string[]>;
/** `import-x/no-restricted-paths` zones for LAYERS under an absolute src folder. */
export declare function layerZones(srcDir: string): Array<{ target: string; from: string; except?: string[]; message: string }>;
