import type { ZodType } from 'zod';
export declare const START: string;
export declare const END: string;
export declare function renderConfigReference(schema: ZodType): string;
export declare function withReference(readme: string, reference: string): string;
