import type { Rule } from 'eslint';

/** ESLint rule `patchbay/no-type-cycle` (eslint-no-type-cycle.js). */
export declare const noTypeCycle: Rule.RuleModule;
