/**
 * How the worker's options reach `wrangler dev`: a private `.dev.vars` file,
 * never the command line. Each value must come back from wrangler's dotenv
 * parser exactly as given (a secret with quotes or spaces included).
 */
import { describe, expect, it } from "vitest";
import { devVarLine } from "../../scripts/wrangler-dev.ts";

describe("devVarLine", () => {
  it("single-quotes plain values, so dotenv expands nothing", () => {
    expect(devVarLine("ADMIN_TOKEN", 'a "quoted" $HOME \\n')).toBe(`ADMIN_TOKEN='a "quoted" $HOME \\n'\n`);
  });

  it("falls back to backticks, then double quotes, for values with single quotes", () => {
    expect(devVarLine("A", "it's")).toBe("A=`it's`\n");
    expect(devVarLine("A", "it's `x`")).toBe(`A="it's \`x\`"\n`);
  });

  it("refuses what dotenv cannot carry, and names that are not option names", () => {
    expect(() => devVarLine("A", "two\nlines")).toThrow(/one line/);
    expect(() => devVarLine("A", "'`\"")).toThrow(/quote/);
    expect(() => devVarLine("BAD-NAME", "x")).toThrow(/invalid worker option name/);
  });
});
