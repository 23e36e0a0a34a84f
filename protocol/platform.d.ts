/**
 * The few web-platform globals the protocol package relies on. Each exists in
 * every runtime that loads it (workerd, browsers, Node ≥ 20), so the package
 * type-checks on its own with `lib: ES2023` and no Node, DOM or workers types
 * (tsconfig.protocol.json). The other tsconfigs exclude this file: there the
 * real declarations of their runtime apply.
 */
declare function setTimeout(callback: () => void, ms?: number): unknown;
declare function clearTimeout(handle: unknown): void;
declare function atob(data: string): string;
declare function btoa(data: string): string;

declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
declare class TextDecoder {
  decode(input?: ArrayBuffer | ArrayBufferView): string;
}

interface CryptoKey {
  readonly type: string;
}
declare const crypto: {
  getRandomValues<T extends Uint8Array>(array: T): T;
  readonly subtle: {
    importKey(
      format: "raw",
      keyData: Uint8Array,
      algorithm: { name: "HMAC"; hash: "SHA-256" | "SHA-1" },
      extractable: boolean,
      keyUsages: readonly "sign"[],
    ): Promise<CryptoKey>;
    sign(algorithm: "HMAC", key: CryptoKey, data: Uint8Array): Promise<ArrayBuffer>;
  };
};
